"""A readable NumPy module computing the function and its gradients.

The module defines `INPUTS`, `WRT`, `forward(*inputs) -> (value, cache)`,
`backward(cache, dout=None) -> gradients in WRT order` and
`value_and_grad(dout=None, /, **inputs) -> (value, {name: gradient})`.
`forward` computes every named intermediate once and hands `backward` what it
needs. Every function taking inputs checks them first (`inputs.py`), and
constants are made in the inputs' floating type (`dtype`). Only validated
identifiers and numbers from the problem reach the code; names that are
Python keywords or builtins are renamed (`lambda_`).
"""

from __future__ import annotations

import builtins
import keyword
import linecache
import re
import textwrap
import types
import unicodedata

import sympy

from . import guards as checks
from .._version import __version__
from ..ir.expr import Apply, Const, Var, postorder
from ..ad.gradient import Gradient
from . import precedence as P
from .numpy_forms import FORMS, HELPERS
from .printer import Printer
from .text import TextPrinter, declarations
from ..ir.shapes import fmt, symbols as shape_symbols

# Names the generated module itself defines or uses.
_RESERVED = {"np", "forward", "backward", "value_and_grad", "INPUTS", "WRT", "SHAPES",
             "dtype", "cache", "dout", "inputs", "name", "value", "grads", "g", "hessian", "hvp",
             "jacobian", "v", "out", "index", "arrays"}


# einsum subscripts, the only strings the generated code holds besides
# names, docstrings and messages: Σ x² by the number of axes, and tr(A B).
SQUARES = {1: "i,i", 2: "ij,ij"}
TRACE_OF_PRODUCT = "ij,ji"

# The input checks' helper functions; the NumPy forms' are `_` + an operator
# name in HELPERS (`_softmax`), read when a name is made (one may be added).
_CHECKS = {"_checked", "_by_name", "_direction"}


def python_name(name: str, taken: set[str]) -> str:
    """A safe, unused Python identifier for a matcalc name."""
    ident = unicodedata.normalize("NFKC", name)
    ident = re.sub(r"\W", lambda m: f"_{ord(m.group()):x}", ident)
    if not ident.isidentifier():
        ident = "v_" + ident
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident) or ident in _RESERVED \
            or ident in _CHECKS | {f"_{op}" for op in HELPERS} or hasattr(builtins, ident):
        ident += "_"
    base, k = ident, 2
    while ident in taken:
        ident, k = f"{base}_{k}", k + 1
    taken.add(ident)
    return ident


def _squared(node):
    """x for x ** 2 or square(x), else None."""
    if isinstance(node, Apply) and node.op == "square" or (
            isinstance(node, Apply) and node.op == "pow" and isinstance(node.args[1], Const)
            and node.args[1].value == 2):
        return node.args[0]
    return None


def _may_be_zero_denominator(value: sympy.Expr) -> bool:
    """Whether a constant's denominator may be 0 at positive sizes (N - D)."""
    den = sympy.fraction(value)[1]
    return bool(den.free_symbols) and den.is_positive is not True


def _of_constants(node) -> bool:
    """Whether `node` is a function of constant scalars only, sqrt(K)."""
    return isinstance(node, Apply) and bool(node.args) and \
        all(isinstance(a, Const) for a in node.args)


def _needs_dtype(node) -> bool:
    """Whether printing `node` names the inputs' floating type `dtype`."""
    if isinstance(node, Apply):
        return node.op in ("ones", "zeros", "eye") or _of_constants(node)
    return isinstance(node, Const) and any(
        _may_be_zero_denominator(t) for t in sympy.Add.make_args(node.value))


def _is_step(node) -> bool:
    return isinstance(node, Apply) and node.op == "step"


class NumpyPrinter(Printer):
    """NumPy source; a chain of three or more matrix products is one
    `np.linalg.multi_dot`, which picks the cheapest order from the shapes of
    the call (so symbolic dimensions need no estimate at generation time)."""

    language = "numpy"
    forms = FORMS

    def product_of(self, factors):
        """A step beside other factors is the boolean mask `(x > 0)`, the
        cheapest form NumPy multiplies; alone it is a number."""
        if len(factors) < 2 or all(_is_step(f) for f in factors):
            return super().product_of(factors)
        numbers = [self.arg(f, P.MUL + 1) for f in factors if not _is_step(f)]
        masks = [f"({self.print(f.args[0])[0]} > 0)" for f in factors if _is_step(f)]
        return self.product(numbers + masks)  # a number first: -a * (x > 0), never -(x > 0)

    def _print_scalar(self, value):
        """A constant in dimensions. One whose denominator may be 0 (N - 1 at
        N = 1) divides in the inputs' floating type, as NumPy does (inf or
        nan, with a RuntimeWarning), never Python's ZeroDivisionError."""
        value = sympy.sympify(value)
        if value.is_Add or not _may_be_zero_denominator(value):
            return super()._print_scalar(value)
        num, den = sympy.fraction(value)
        return f"{self.arg_scalar(num, P.MUL)} / {DTYPE_CODE}.type({self.scalar(den)})", P.MUL

    def _print_form(self, node):
        """A function of constants alone (sqrt(K), log(2 * pi)) takes them as
        scalars of the inputs' floating type, so that its value has that
        type too (NumPy gives float64 for a Python number)."""
        if not _of_constants(node):
            return super()._print_form(node)
        form = self.form(node)
        args = [f"{DTYPE_CODE}.type({self.doprint(a)})" for a in node.args]
        return form.render(args, dict(node.params)), form.prec

    def _print_sum(self, node):
        """Σ x² over a whole named array is `np.einsum("ij,ij", x, x)`: one
        pass, no temporary x ** 2 (and, unlike a BLAS dot, no threads to
        start for a reduction)."""
        x = _squared(node.args[0])
        if node.param("axis") is None and isinstance(x, Var) and x.ndim in SQUARES:
            name = self.print(x)[0]
            return f'np.einsum("{SQUARES[x.ndim]}", {name}, {name})', P.ATOM
        return self._print_form(node)

    def _print_trace(self, node):
        """tr(A B) = Σ_ij A_ij B_ji is `np.einsum("ij,ji", A, B)`: n² products
        where forming A B takes n³; tr(A Cᵀ) = Σ_ij A_ij C_ij is
        `np.einsum("ij,ij", A, C)`, both read in memory order."""
        x = node.args[0]
        if isinstance(x, Apply) and x.op == "matmul":
            a, b = x.args
            if isinstance(b, Apply) and b.op == "transpose":
                pair = (self.print(a)[0], self.print(b.args[0])[0])
                return f'np.einsum("{SQUARES[2]}", {pair[0]}, {pair[1]})', P.ATOM
            pair = (self.print(a)[0], self.print(b)[0])
            return f'np.einsum("{TRACE_OF_PRODUCT}", {pair[0]}, {pair[1]})', P.ATOM
        return self._print_form(node)

    def _print_matmul(self, node):
        chain = [node.args[1]]
        head = node.args[0]
        while isinstance(head, Apply) and head.op == "matmul":
            chain.append(head.args[1])
            head = head.args[0]
        chain.append(head)
        if len(chain) < 3 or any(m.ndim != 2 for m in chain[1:-1]):
            return super()._print_matmul(node)
        items = ", ".join(self.print(m)[0] for m in reversed(chain))
        return f"np.linalg.multi_dot([{items}])", P.ATOM


def _identifiers(gradient: Gradient) -> dict[str, str]:
    """Every matcalc name the code uses, mapped to its Python identifier."""
    problem, program = gradient.problem, gradient.program
    taken: set[str] = {DTYPE_CODE}
    names = [*problem.variables, *problem.dims]
    if program.seed is not None:
        names.append(program.seed.name)
    names += [b.name for b in program.bindings]
    return {**{n: python_name(n, taken) for n in dict.fromkeys(names)}, DTYPE: DTYPE_CODE}


# The inputs' floating type, which constant arrays (np.ones, np.eye) take so
# that float32 stays float32: a key no matcalc name can be, and the Python
# name the NumPy forms use.
DTYPE, DTYPE_CODE = "<dtype>", "dtype"


def _used_names(exprs) -> list[str]:
    """Variable and dimension names the expressions mention, in order."""
    out: dict[str, None] = {}
    if any(_subtracted_product(e) or isinstance(e, Const) for e in exprs):
        out[DTYPE] = None  # an in-place update's product, a constant result
    for node in postorder(exprs):
        if _needs_dtype(node):
            out[DTYPE] = None
        if isinstance(node, Var):
            out[node.name] = None
        elif isinstance(node, Const):
            for s in sorted(node.value.free_symbols, key=str):
                out[s.name] = None
        for key, value in getattr(node, "params", ()):
            if key == "shape":
                for s in sorted(shape_symbols(value), key=str):
                    out[s.name] = None
    return list(out)


def _dim_lines(dims: list[str], problem, ident) -> list[str]:
    """`N, D = X.shape` lines that define the dimensions the code uses."""
    lines, pending = [], list(dims)
    for name, v in problem.variables.items():
        here = [str(d) for d in v.shape]
        found = [d for d in pending if d in here]
        if not found:
            continue
        if len(found) == len(here) == 2 and here[0] != here[1]:
            lines.append(f"{ident[here[0]]}, {ident[here[1]]} = {ident[name]}.shape")
        else:
            lines += [f"{ident[d]} = {ident[name]}.shape[{here.index(d)}]" for d in found]
        pending = [d for d in pending if d not in found]
    return lines


WIDTH = 79


def _wrap(line: str, indent: str) -> list[str]:
    """A statement within WIDTH columns: the long part goes in parentheses,
    broken at spaces (printed code has spaces only between tokens, so every
    break inside the parentheses is legal)."""
    if len(indent + line) <= WIDTH or any(" " in q for q in re.findall("'[^']*'", line)):
        # never split a string literal; quoted identifiers have no spaces
        return [indent + line]
    nested = line[:len(line) - len(line.lstrip(" "))]  # a line inside a loop
    indent, line = indent + nested, line[len(nested):]
    if line.startswith("#"):
        return [indent + "# " + part for part in
                textwrap.wrap(line[2:], WIDTH - len(indent) - 2, break_long_words=False)]
    if line.endswith((" = cache", " = inputs", " = arrays")):
        head, _, source = line.rpartition(" = ")
        opening, body, closing = "(", head.strip("()"), ") = " + source
    elif line.startswith("return "):
        opening, body, closing = "return (", line[len("return "):], ")"
    elif line.startswith("for ") and line.endswith("):"):  # for x in f(...):
        head, _, rest = line.partition("(")
        opening, body, closing = head + "(", rest[:-2], "):"
    elif " = " not in line:  # a call statement: break inside its parentheses
        head, _, rest = line.partition("(")
        opening, body, closing = head + "(", rest[:-1], ")"
    else:
        head, _, body = line.partition(" = ")
        opening, closing = f"{head} = (", ")"
        if _enclosed(body):  # a tuple: its own parentheses
            body = body[1:-1]
    parts = textwrap.wrap(body, WIDTH - len(indent) - 4, break_long_words=False,
                          break_on_hyphens=False)
    return [indent + opening] + [indent + "    " + p for p in parts] + [indent + closing]


def _subtracted_product(expr):
    """(a, P) when `expr` is a - P for a matrix product P of the result's
    shape (an array, not a scalar), else None."""
    if not (isinstance(expr, Apply) and expr.op == "add" and len(expr.args) == 2
            and expr.ndim > 0):
        return None
    coeff, factors = Printer.parts(expr.args[1])
    if coeff != -1 or len(factors) != 1:
        return None
    product = factors[0]
    if isinstance(product, Apply) and product.op == "matmul" and product.shape == expr.shape \
            and not (isinstance(product.args[0], Apply) and product.args[0].op == "matmul"):
        return expr.args[0], product
    return None


def _assignment(target: str, expr, printer: NumpyPrinter) -> list[str]:
    """`target = expr`. NumPy adds into a temporary in place only when the
    temporary is the left operand of '-', so `a - A @ B` is computed into
    the new product, made in the inputs' floating type (so that `a` fits):
    `t = np.matmul(A, B, dtype=dtype)` then `np.subtract(a, t, out=t)`."""
    if isinstance(expr, Const):  # a constant result: a scalar of the inputs' type
        return [f"{target} = {DTYPE_CODE}.type({printer.doprint(expr)})"]
    split = _subtracted_product(expr)
    if split is None:
        return [f"{target} = {printer.doprint(expr)}"]
    a, product = split
    left, right = (printer.doprint(m) for m in product.args)
    return [f"{target} = np.matmul({left}, {right}, dtype={DTYPE_CODE})",
            f"np.subtract({printer.doprint(a)}, {target}, out={target})"]


def _enclosed(code: str) -> bool:
    """Whether `code` is one parenthesised whole, `(...)`."""
    depth = 0
    for k, ch in enumerate(code):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return k == len(code) - 1 and ch == ")"
    return False


def _comment(binding, text: str, code: str, value: str) -> str | None:
    meaning = {"adjoint": f"∂{value}/∂{binding.of}",
               "gradient": f"∂{value}/∂{binding.of}"}.get(binding.role)
    parts = [p for p in (meaning, text if text != code else None) if p]
    return f"# {binding.name} = " + " = ".join(parts) if parts else None


class _Emitter:
    """Writes the module for one gradient, function by function."""

    def __init__(self, gradient: Gradient):
        self.problem, self.program = gradient.problem, gradient.program
        self.ident = _identifiers(gradient)
        self.code, self.text = NumpyPrinter(self.ident), TextPrinter()
        self.value = self.program.value
        self.forward, self.backward = self.program.forward(), self.program.backward()
        self.seed = self.program.seed.name if self.program.seed is not None else None
        self.grads = [self.ident[name] for _, name in self.program.gradients]
        problem = self.problem
        fwd_names = _used_names([b.expr for b in self.forward])
        self.fwd_dims = [n for n in fwd_names if n in problem.dims]
        defined = set(problem.variables) | {b.name for b in self.forward} | set(self.fwd_dims)
        bwd_names = _used_names([b.expr for b in self.backward])
        needed = set(bwd_names)
        self.cache = [n for n in [*problem.variables, *(b.name for b in self.forward),
                                  *self.fwd_dims] if n in needed and n in defined]
        bwd_dims = [n for n in bwd_names if n in problem.dims and n not in self.cache]
        self.cache += bwd_dims
        self.fwd_dims += [d for d in bwd_dims if d not in self.fwd_dims]
        self.dtype = DTYPE in fwd_names or DTYPE in bwd_names
        if DTYPE in bwd_names:
            self.cache.append(DTYPE)

    def body(self, bindings) -> list[str]:
        lines = []
        for b in bindings:
            code = _assignment(self.ident[b.name], b.expr, self.code)
            comment = _comment(b, self.text.doprint(b.expr),
                               code[0].partition(" = ")[2] if len(code) == 1 else "", self.value)
            if comment:
                lines.append(comment)
            lines += code
        return lines

    def docstring(self) -> list[str]:
        problem, value = self.problem, self.value
        out = [f'"""Value and gradients of {value}, generated by matcalc {__version__}.', ""]
        for name, node in problem.intermediates.items():
            out += _wrap(f"{name} = {self.text.define(node)}", "    ")
        if value not in problem.intermediates:
            out += _wrap(f"{value} = {self.text.define(problem.output)}", "    ")
        shapes = {w: problem.variables[w].shape for w in problem.wrt}
        out += [""] + textwrap.wrap("Inputs: " + ", ".join(declarations(problem)), WIDTH)
        out += textwrap.wrap("Gradients: " + ", ".join(
            f"{name} = ∂{value}/∂{w} ({fmt(shapes[w])})"
            for w, name in self.program.gradients), WIDTH, break_on_hyphens=False)
        return out + ['"""']

    def forward_function(self) -> list[str]:
        ident = self.ident
        args = ", ".join(ident[n] for n in self.problem.variables)
        lines = checks.call(args)
        if self.dtype:
            lines.append(_result_type(args))
        lines += _dim_lines(self.fwd_dims, self.problem, ident) + self.body(self.forward)
        lines.append(f"return {ident[self.value]}, "
                     f"{_tuple_code([ident[n] for n in self.cache])}")
        signature = [f"def forward({args}):"]
        if len(signature[0]) > WIDTH:
            signature = ["def forward("] + ["        " + p for p in textwrap.wrap(
                args, WIDTH - 8, break_long_words=False)]
            signature[-1] += "):"
        return (signature +
                [f'    """Return ({self.value}, cache) for inputs as `_checked` takes them;',
                 '    cache holds what backward needs."""']
                + [w for line in lines for w in _wrap(line, "    ")])

    def backward_function(self) -> list[str]:
        ident, value = self.ident, self.value
        lines = []
        if self.cache:
            lines.append(f"{_tuple_code([ident[n] for n in self.cache])} = cache")
        if self.seed is not None:
            lines += ["if dout is None:",
                      f"    raise TypeError('backward needs dout = ∂L/∂{value}, "
                      f"of shape {fmt(self.program.seed.shape)}')",
                      f"{ident[self.seed]} = dout"]
        lines += self.body(self.backward)
        lines.append(f"grads = {_tuple_code(self.grads)}")
        if self.seed is None:
            lines += ["if dout is not None:",
                      *("    " + line for line in checks.SCALAR_DOUT.strip("\n").split("\n")),
                      "    grads = tuple(dout * g for g in grads)"]
        lines.append("return grads")
        scaled = "times dout (default 1)" if self.seed is None else "given dout = ∂L/∂" + value
        doc = textwrap.wrap(f'"""Return ({", ".join(self.grads)}), the gradients of '
                            f'{value} {scaled}."""', WIDTH - 4, break_on_hyphens=False)
        return (["def backward(cache, dout=None):"] + ["    " + d for d in doc]
                + [w for line in lines for w in _wrap(line, "    ")])

    def helpers(self, programs) -> list[str]:
        """The NumPy helper functions the bindings call, by operator name."""
        used = {node.op for p in programs for node in postorder([b.expr for b in p.bindings])
                if isinstance(node, Apply) and node.op in HELPERS}
        return [HELPERS[op] for op in sorted(used)]

    def module(self, extras=()) -> str:
        problem = self.problem
        out = self.docstring() + ["", "import numpy as np", ""]
        out += _wrap(f"INPUTS = {_tuple(problem.variables)}", "")
        out += _wrap(f"WRT = {_tuple(problem.wrt)}", "")
        shapes = checks.shapes(problem)
        out += shapes[:-1] + _wrap(shapes[-1], "") + ["", ""]
        out += checks.checked(problem, self.ident, _wrap) + ["", ""]
        helpers = self.helpers([self.program, *(e.code for e in extras)])
        if any(e.kind == "hvp" for e in extras):  # hvp's check of its direction v
            helpers.append(checks.DIRECTION)
        for helper in helpers:
            out += [helper.strip("\n"), "", ""]
        out += self.forward_function() + ["", ""] + self.backward_function() + ["", ""]
        out += ["def value_and_grad(dout=None, /, **inputs):",
                f'    """Return ({self.value}, {{name: gradient}}) for inputs named as in',
                '    INPUTS, as `_checked` takes them; dout as for backward."""',
                "    value, cache = forward(*_by_name(inputs))",
                "    return value, dict(zip(WRT, backward(cache, dout)))", ""]
        for extra in extras:
            out[-1:] = ["", ""] + _SecondOrderEmitter(extra).function() + [""]
        return "\n".join(out)


class _SecondOrderEmitter:
    """`hessian(**inputs)`, `hvp(v, /, **inputs)` or `jacobian(**inputs)`."""

    def __init__(self, result):
        self.result, self.problem, self.program = result, result.problem, result.code
        names = [*self.problem.variables, *self.problem.dims,
                 *(e.direction.name for e in result.entries if e.direction is not None),
                 *(b.name for b in self.program.bindings)]
        taken: set[str] = {DTYPE_CODE}
        self.ident = {n: python_name(n, taken) for n in dict.fromkeys(names)}
        self.ident[DTYPE] = DTYPE_CODE
        self.code = NumpyPrinter(self.ident)

    def _depends_on(self, bindings, direction: str) -> set[str]:
        """The bindings that (transitively) use the direction."""
        out = {direction}
        for b in bindings:
            if any(isinstance(n, Var) and n.name in out for n in postorder([b.expr])):
                out.add(b.name)
        return out

    def _lines(self, bindings) -> list[str]:
        return [line for b in bindings for line in _assignment(self.ident[b.name], b.expr,
                                                               self.code)]

    def function(self) -> list[str]:
        result, problem, ident = self.result, self.problem, self.ident
        results = [name for _, name in self.program.gradients]
        bindings = self.program.needed(results)
        used = _used_names([b.expr for b in bindings])
        arrays = [e for e in result.entries if e.form == "operator" and result.kind != "hvp"]
        dims = [n for n in problem.dims if n in used or any(
            str(d) == n for e in arrays for d in e.shape)]
        args = ", ".join(ident[n] for n in problem.variables)
        lines = checks.call(args, by_name=True)
        if DTYPE in used or arrays:
            lines.append(_result_type(args))
        lines += _dim_lines(dims, problem, ident)
        single = len(result.entries) == 1
        if result.kind == "hvp":
            lines += [f"{ident[e.direction.name]} = _direction(v, {ident[e.of]}"
                      + (")" if single else f", {e.of!r})") for e in result.entries]
            lines += self._lines(bindings)
            head = "def hvp(v, /, **inputs):"  # an input may be named v
            doc = ('"""(H v)_X = Σ_Y ∂²L/∂X∂Y v_Y, about the cost of two gradients: v is '
                   'an array for one variable, else a dict by name, each of its '
                   'variable\'s shape."""')
        else:
            looped = set().union(*(self._depends_on(bindings, e.direction.name) | {name}
                                   for e, name in zip(result.entries, results)
                                   if e.form == "operator"))
            lines += self._lines([b for b in bindings if b.name not in looped])
            for e, name in zip(result.entries, results):
                if e.form == "operator":
                    lines += self._operator_loop(e, name, bindings)
            head = f"def {result.kind}(**inputs):"
            doc = (f'"""The {result.kind} of {problem.output_name}: '
                   + "; ".join(e.name + ("" if e.layout.startswith("[") else " is ") + e.layout
                               for e in result.entries) + '."""')
        values = [ident[name] for name in results]
        lines.append(f"return {values[0]}" if single else "return {" + ", ".join(
            f"{e.of!r}: {v}" for e, v in zip(result.entries, values)) + "}")
        body = [w for line in lines for w in _wrap(line, "    ")]
        return [head] + ["    " + d for d in textwrap.wrap(doc, WIDTH - 4)] + body

    def _operator_loop(self, entry, name, bindings) -> list[str]:
        """The full array of a linear map: its value at each unit direction."""
        ident = self.ident
        v, out = ident[entry.direction.name], ident[name]
        looped = self._depends_on(bindings, entry.direction.name)
        inner = [b for b in bindings if b.name in looped]
        vshape = _shape_code(entry.direction.shape, self.code)
        full = _shape_code(entry.shape, self.code)
        if not inner or inner[-1].name != name:  # a linear map free of v is 0
            return [f"{out} = np.zeros({full}, {DTYPE_CODE})"]
        block = [f"{out} = np.empty({full}, {DTYPE_CODE})",
                 "for index in np.ndindex(*" + vshape + "):",
                 f"    {v} = np.zeros({vshape}, {DTYPE_CODE})",
                 f"    {v}[index] = 1"]
        block += ["    " + line for line in self._lines(inner[:-1])]
        block.append(f"    {out}[(...,) + index] = {self.code.doprint(inner[-1].expr)}")
        return block


def _result_type(args: str) -> str:
    """`dtype = np.result_type(X, y, 1.0)`: the inputs' floating type."""
    return f"{DTYPE_CODE} = np.result_type({', '.join(a for a in (args, '1.0') if a)})"


def _shape_code(shape, printer) -> str:
    items = [printer.dim(d) for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def generate(gradient: Gradient, extras=()) -> str:
    """The source of the module for `gradient` and any second-order results
    (`matcalc.second`: hessian, hvp, jacobian), deterministic."""
    return _Emitter(gradient).module(extras)


def _tuple(names) -> str:
    names = list(names)
    return "(" + ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "") + ")"


def _tuple_code(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def load(source: str, name: str) -> types.ModuleType:
    """Execute generated source as a module whose `.source` is the text."""
    filename = f"<matcalc {name}>"
    module = types.ModuleType(f"matcalc_generated_{name}")
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    module.source = source
    return module
