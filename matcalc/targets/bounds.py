"""The check that an integer input's values lie within the axes it indexes.

An integer input i that indexes axes of sizes n1, n2, ... (`E[tokens]`
indexes E's V rows, `eye(C)[labels]` C rows) must hold values with
-n <= i < n, n = min(n1, n2, ...): NumPy's rule, a negative index counting
from the end. `_checked` ends with `_in_ranges(arrays)`, written for the
problem: it reads each bound from the inputs' shapes, as the functions read
their sizes, and calls the target's helper `_in_range(name, x, n, bound)`,
a `ValueError` naming the input, the bound as declared and as bound, and the
value found outside it (`tokens: values must lie in [-V, V) = [-5000, 5000),
got 5003`). The helper reads values only where that computes nothing hidden
(`NUMPY`, `TORCH`, `JAX`, `ARRAY_API`: each target's helper).
"""

from __future__ import annotations

import sympy

from ..ir.expr import is_op, postorder
from ..ops.indexing import indexed_sizes
from .dims import dim_lines

WIDTH = 79

# The names the check defines in a generated module.
NAMES = frozenset({"_in_range", "_in_ranges"})

# The test and message every target's `_in_range` shares, once the least
# and greatest values `low` and `high` are Python integers.
REFUSE = '''\
    if low < -n or high >= n:
        shown = "" if bound == f"[-{n}, {n})" else f" = [-{n}, {n})"
        raise ValueError(f"{name}: values must lie in {bound}{shown}, "
                         f"got {high if high >= n else low}")
'''

NUMPY = '''
def _in_range(name, x, n, bound):
    """Refuse the integer input x unless its values i lie in -n <= i < n
    (the interval `bound` as declared), n the size of the axis it indexes:
    a negative i counts from the end. A ValueError names the input."""
    low, high = int(x.min()), int(x.max())
''' + REFUSE

TORCH = '''
def _in_range(name, x, n, bound):
    """Refuse the integer input x unless its values i lie in -n <= i < n
    (the interval `bound` as declared), n the size of the axis it indexes:
    a negative i counts from the end. A ValueError names the input. One
    pass (aminmax) and one read to the host; none while torch.compile
    traces, where the values are not known."""
    if torch.compiler.is_compiling():
        return
    low, high = torch.stack(torch.aminmax(x)).tolist()
''' + REFUSE

JAX = '''
def _in_range(name, x, n, bound):
    """Refuse the integer input x unless its values i lie in -n <= i < n
    (the interval `bound` as declared), n the size of the axis it indexes:
    a negative i counts from the end. A ValueError names the input. A
    tracer (jax.jit, jax.grad) is not checked: its values are not known,
    and JAX clamps an index out of range."""
    if isinstance(x, jax.core.Tracer):
        return
    if {d.platform for d in x.devices()} == {"cpu"}:  # read on the host:
        x = jax.device_get(x)  # 15 us, where jnp.min and jnp.max take 110
        low, high = int(x.min()), int(x.max())
    else:
        low, high = (int(v) for v in jax.device_get((jnp.min(x), jnp.max(x))))
''' + REFUSE

ARRAY_API = '''
def _in_range(name, x, n, bound):
    """Refuse the integer input x unless its values i lie in -n <= i < n
    (the interval `bound` as declared), n the size of the axis it indexes:
    a negative i counts from the end. A ValueError names the input. Only
    NumPy arrays and PyTorch tensors (not while torch.compile traces) are
    read: a Dask graph stays lazy, a JAX array may be a tracer, and others
    (CuPy, array-api-strict) are left as given."""
    if is_numpy_array(x):
        low, high = int(x.min()), int(x.max())
    else:
        import sys  # torch is loaded where x is a tensor
        torch = sys.modules.get("torch")
        if not (torch and isinstance(x, torch.Tensor)):
            return
        if torch.compiler.is_compiling():
            return
        low, high = torch.stack(torch.aminmax(x)).tolist()
''' + REFUSE


def least_sizes(problem) -> dict[str, int]:
    """The least size of each dimension the problem's fixed indices and
    slice bounds need (X[:, 5] of X: N x T needs T >= 6, X[-7:] 7)."""
    out: dict[str, int] = {}
    for node in postorder([problem.output]):
        if not is_op(node, "index"):
            continue
        for n, e in zip(node.args[0].shape, (e for e in node.param("key") if e is not None)):
            bounds = [b for b in (e if isinstance(e, tuple) else (e,)) if isinstance(b, int)]
            if n.is_Symbol and bounds:
                need = max(b + 1 if b >= 0 else -b for b in bounds)
                out[str(n)] = max(need, out.get(str(n), 1))
    return out


def least_checks(problem, indent: str = "    ") -> list[str]:
    """`_checked`'s lines refusing a dimension smaller than a fixed index
    needs (`X: D must be at least 6, got 3`), the input named the first
    that has the dimension, and an axis that is a product of dimensions
    (`product_checks`); `sizes` maps each dimension to its size."""
    lines = product_checks(problem, indent)
    for d, n in sorted(least_sizes(problem).items()):
        name = next(v for v, x in problem.variables.items()
                    if d in {str(a) for a in x.shape})
        lines += [f"{indent}if sizes[{d!r}] < {n}:  # a fixed index needs {n} entries",
                  f"{indent}    raise ValueError(f\"{name}: {d} must be at least {n}, "
                  f"got {{sizes[{d!r}]}}\")"]
    return lines


def product_checks(problem, indent: str = "    ") -> list[str]:
    """`_checked`'s lines refusing an axis declared as a product of
    dimensions (D = 4 * E) whose size is not that product: a multiple of
    the factors' sizes the inputs give, and equal to it where they give all
    (else E read as D // 4 would be silently wrong)."""
    lines, seen = [], set()
    for name, v in problem.variables.items():
        for k, d in enumerate(map(sympy.sympify, v.shape)):
            number, rest = d.as_coeff_Mul()
            factors = sympy.Mul.make_args(rest)
            if d.is_Symbol or d.is_Integer or str(d) in seen or not number.is_Integer \
                    or not all(f.is_Symbol for f in factors):
                continue
            seen.add(str(d))
            key, names = repr(str(d)), [repr(str(f)) for f in factors]
            given = " and ".join(f"{f} in sizes" for f in names)  # every factor's size
            lines += [f"{indent}whole = {number}" + "".join(f" * sizes.get({f}, 1)" for f in names)
                      + f"  # {name}'s axis {k} is {d}",
                      f"{indent}if sizes[{key}] % whole or ({given} and sizes[{key}] != whole):",
                      f"{indent}    what = whole if {given} else f\"a multiple of {{whole}}\"",
                      f"{indent}    raise ValueError(f\"{name}: axis {k} is {d}, expected {{what}}, \"",
                      f"{indent}                     f\"got {{sizes[{key}]}}\")"]
    return lines


def bounds(problem) -> dict[str, sympy.Expr]:
    """Each integer input's bound: the least size of the axes it indexes."""
    sizes = indexed_sizes([problem.output])
    return {name: sympy.Min(*sizes[name]) for name in problem.variables if name in sizes}


class _Declared(sympy.printing.str.StrPrinter):
    """A bound as declared: `min(3, V)`, `M + N`, the names as written."""

    def _print_Min(self, expr):
        return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"


def interval(n: sympy.Expr) -> tuple[str, str]:
    """`[-V, ` and `V)`, `[-(M + N), ` and `M + N)`: the valid values for
    the bound n, in two parts."""
    text = _Declared().doprint(n)
    low = f"-{text}" if n.is_Atom or isinstance(n, sympy.Min) else f"-({text})"
    return f"[{low}, ", f"{text})"


def in_ranges(problem, ident) -> list[str]:
    """The source of `_in_ranges(arrays)` for the problem's inputs, named in
    the code by `ident`; empty where no integer input indexes an axis."""
    bound = bounds(problem)
    if not bound:
        return []
    dims = [d for d in problem.dims
            if any(problem.dims[d] in n.free_symbols for n in bound.values())]
    names = [ident[n] for n in problem.variables]
    named = {problem.dims[d]: sympy.Symbol(ident[d]) for d in dims}
    head = "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ") = arrays"
    checks = [line for name, n in bound.items() for line in _call(
        [repr(name), ident[name], sympy.pycode(n.xreplace(named))], interval(n))]
    return ["def _in_ranges(arrays):",
            '    """The arrays, once each integer input\'s values lie within the',
            '    axes it indexes (_in_range)."""',
            f"    {head}",
            *("    " + line for line in dim_lines(dims, problem, ident)),
            *("    " + line for line in checks),
            "    return arrays"]


def _call(args: list[str], shown: tuple[str, str]) -> list[str]:
    """`_in_range(*args, interval)` on one line, or one argument a line
    where that is too long (the interval in its two parts)."""
    line = f"_in_range({', '.join(args)}, {''.join(shown)!r})"
    if len(line) <= WIDTH - 4:
        return [line]
    return ["_in_range(", *(f"    {a}," for a in args), f"    {shown[0]!r}", f"    {shown[1]!r})"]


def section(problem, ident, wrap, helper: str) -> list[str]:
    """The module's lines of the check, each after two blank lines: the
    target's `helper` (its `_in_range`) and `_in_ranges` for the problem,
    wrapped by `wrap`; empty where no integer input indexes an axis."""
    lines = [w for line in in_ranges(problem, ident) for w in wrap(line, "")]
    return ["", "", helper.strip("\n"), "", "", *lines] if lines else []


def returned(lines: list[str]) -> list[str]:
    """The lines with their last, `return x`, returning `_in_ranges(x)`."""
    last = lines[-1]
    indent, value = last[:len(last) - len(last.lstrip())], last.strip()[len("return "):]
    return lines[:-1] + [f"{indent}return _in_ranges({value})"]
