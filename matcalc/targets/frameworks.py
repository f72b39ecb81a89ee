"""What the framework-native targets (`targets.jax`, `targets.torch`) share.

As SymPy's NumPy, CuPy and JAX printers differ by a module name and a
dictionary of known functions, a framework's printer is the NumPy printer
with `np.` read as the framework's module (`jnp.`, `torch.`): its forms are
NumPy's renamed, plus the few the framework spells its own way. Neither
framework writes into arrays, so their capabilities are einsum, multi_dot
and boolean masks only (no `out=`, no item assignment: full Hessians and
Jacobians are stacked from their columns).

The input checks (`Guards`) accept the framework's arrays, tracers included
(`jax.jit`, `torch.compile`): shapes only, never a conversion to NumPy.
"""

from __future__ import annotations

import re

import sympy

from . import array_api_guards, bounds
from . import guards as numpy_guards
from . import precedence as P
from ..ir.expr import Apply, Const, postorder
from ..passes.lowering import Capabilities
from .forms import Form, Forms, call
from .numpy import NumpyPrinter, NumpyTarget, _may_be_zero_denominator, _of_constants
from .numpy_forms import FORMS as NUMPY_FORMS, HELPERS as NUMPY_HELPERS

# JAX's (torch has its own): no tensordot, permuted `@` or contraction order,
# as jnp.einsum is XLA's dot_general, which picks the order itself.
CAPABILITIES = Capabilities(einsum=True, multi_dot=True, masks=True, broadcasts=True,
                            casts=True)

_MARK = "\0{}\0"


def renamed(form: Form, module: str) -> Form:
    """A NumPy form with `np.` read as `module.` (its arguments untouched)."""
    def render(args, params):
        text = form.render([_MARK.format(k) for k in range(len(args))], params)
        text = re.sub(r"\bnp\.", module + ".", text)
        return re.sub("\0(\\d+)\0", lambda m: args[int(m.group(1))], text)
    return Form(render, form.prec, form.arg_prec)


class RenamedForms(Forms):
    """A framework's forms: its own `exceptions`, then NumPy's forms (read
    when asked, so one registered at run time applies) with `np.` read as
    `module.`, else the default `module.name(x, key=value)`."""

    def __init__(self, module: str, exceptions: dict):
        super().__init__(lambda name: call(f"{module}.{name}"), exceptions)
        self.module = module

    def __missing__(self, name: str) -> Form:
        if name in NUMPY_FORMS:
            return renamed(NUMPY_FORMS[name], self.module)
        return self.default(name)


def helpers(module: str, exceptions: dict) -> dict:
    """NumPy's helper functions (as they are now) with `np.` read as
    `module.`, and the framework's own (an exception of None: the operator
    needs none)."""
    out = {op: re.sub(r"\bnp\.", module + ".", source) for op, source in NUMPY_HELPERS.items()}
    out.update(exceptions)
    return {op: source for op, source in out.items() if source is not None}


class FrameworkPrinter(NumpyPrinter):
    """The NumPy printer with the framework's `module` and `forms`; a
    constant in the inputs' floating type is `typed(value)`."""

    module: str

    def typed(self, value: str) -> str:
        """A scalar of the inputs' floating type, on their device."""
        raise NotImplementedError

    def _print_scalar(self, value):
        """A constant in dimensions; one whose denominator may be 0 (N - 1 at
        N = 1) divides in the inputs' floating type (inf or nan)."""
        value = sympy.sympify(value)
        if value.is_Add or not _may_be_zero_denominator(value):
            return super(NumpyPrinter, self)._print_scalar(value)
        num, den = sympy.fraction(value)
        return f"{self.arg_scalar(num, P.MUL)} / {self.typed(self.scalar(den))}", P.MUL

    def constant(self, value):
        """An exact constant (log(2), pi) as a Python float; one in
        dimensions (log(N)) by Python's `math`."""
        if value.is_number:
            return repr(float(value))
        return sympy.pycode(value, fully_qualified_modules=True)

    def _print_form(self, node):
        """A function of constants alone (sqrt(K)) takes them as scalars of
        the inputs' floating type."""
        if not _of_constants(node):
            return super(NumpyPrinter, self)._print_form(node)
        form = self.form(node)
        args = [self.typed(self.doprint(a)) for a in node.args]
        return form.render(args, dict(node.params)), form.prec

    def _print_transpose(self, node):
        """xᵀ; a vector's transpose is itself (`.T` is for matrices)."""
        if node.args[0].ndim < 2:
            return self.print(node.args[0])
        return f"{self.arg(node.args[0], P.POSTFIX)}.T", P.POSTFIX

    def _print_einsum(self, node):
        items = ", ".join(self.print(a)[0] for a in node.args)
        return f'{self.module}.einsum("{node.param("subscripts")}", {items})', P.ATOM

    def _print_multi_dot(self, node):
        items = ", ".join(self.print(m)[0] for m in node.args)
        return f"{self.module}.linalg.multi_dot([{items}])", P.ATOM


class Guards:
    """The input checks of a framework module (the interface of
    `targets.guards`): `array` is the source of `_array(name, x)`, an input
    as the framework's floating array (a tracer as it is; a TypeError names
    an input that is no array of real numbers); `promote`, the lines of
    `_checked` giving every floating input one type, the promotion of the
    arrays' types (float32 beside float64: float64, as NumPy's target), a
    Python number taking the arrays' type."""

    call = staticmethod(numpy_guards.call)
    shapes = staticmethod(numpy_guards.shapes)

    def __init__(self, array: str, promote: str, indices: str = "", in_range: str = ""):
        self.array, self.promote, self.indices = array, promote, indices
        self.in_range = in_range

    def checked(self, problem, ident, wrap) -> list[str]:
        """`_by_name`, `_array` and `_checked`: the inputs as the framework's
        floating arrays of their declared shapes, each dimension name one
        size, at least 1, throughout."""
        fixed = sorted({a for v in problem.variables.values()
                        for a in map(numpy_guards._axis, v.shape) if isinstance(a, int)})
        sizes = "{" + ", ".join(f"{n}: {n}" for n in fixed) + "}"
        by_name = numpy_guards.by_name_source(problem)[0]
        if not problem.variables:
            return [by_name]
        least = "".join(line + "\n" for line in bounds.least_checks(problem))
        checked = _CHECKED.replace("{SIZES}", sizes).replace(
            "{PROMOTE}\n", least + self.promote.lstrip("\n"))
        if any(v.domain == "int" for v in problem.variables.values()):  # indices stay integers
            checked = checked.replace("        x = _array(name, x)\n", "        x = _indices(name, x) "
                                      "if name in INTEGERS else _array(name, x)\n")
            ranges = bounds.section(problem, ident, wrap, self.in_range)
            if ranges:
                checked = checked.replace("    return out\n", "    return _in_ranges(out)\n")
            return [by_name, "", "", numpy_guards.integers(problem), "", "",
                    self.indices.strip("\n"), *ranges, "", "", self.array.strip("\n"), "", "",
                    checked.strip("\n")]
        return [by_name, "", "", self.array.strip("\n"), "", "", checked.strip("\n")]

    DIRECTION = numpy_guards.direction(
    """The direction for input x, v itself or v[name] (several inputs, or
    a dict for one), of x's shape, made an array as by _checked.""", '''
    label = "v" if name is None else f"v[{name!r}]"
    v = _array(label, v)
    if tuple(v.shape) != tuple(x.shape):
        raise ValueError(f"{label}: expected shape {tuple(x.shape)}, "
                         f"got {tuple(v.shape)}")
    return v
''')

    SCALAR_DOUT = '''
if getattr(dout, "ndim", 0):  # the function is a scalar, so is dout
    raise ValueError(f"dout: expected a scalar, got shape {tuple(dout.shape)}")
'''.rstrip("\n") + array_api_guards.COMPLEX_DOUT
    ARRAY_DOUT = array_api_guards.ARRAY_DOUT


_CHECKED = '''
def _checked(*arrays):
    """The inputs, in INPUTS order, as floating arrays (`_array`) of their
    declared SHAPES and of one floating type, the promotion of the arrays'
    types. Each dimension name takes one size, at least 1, throughout:
    else ValueError."""
    sizes = {SIZES}  # dimension -> size, from the first input that has it
    out = []
    for name, x, shape in zip(INPUTS, arrays, SHAPES):
        x = _array(name, x)
        got = tuple(x.shape)
''' + numpy_guards.SHAPE_CHECK + '''        out.append(x)
{PROMOTE}
    return out
'''

# The names a framework module's checks define.
CHECKS = frozenset({"_checked", "_by_name", "_direction", "_array"}) | bounds.NAMES


class FrameworkTarget(NumpyTarget):
    """A framework's part of a module (see `module.Target`): NumPy's, read
    with the framework's module name, without writes into arrays; a
    subclass sets `names` (its modules, wrappers), `module` and
    `helper_exceptions`."""

    capabilities = CAPABILITIES
    names: frozenset
    module: str               # the framework's module as the code names it
    helper_exceptions: dict   # operator -> its own helper's source, or None
    permute_function = "permute_dims"   # the array API's name; torch's is permute

    @property
    def helper_sources(self) -> dict:
        """Operator -> the source of the helper function its form calls."""
        return helpers(self.module, self.helper_exceptions)

    @property
    def reserved(self) -> frozenset:
        return frozenset(self.names | CHECKS | {f"_{op}" for op in self.helper_sources})

    @staticmethod
    def assignment(target: str, expr, printer) -> list[str]:
        """`target = expr`; a constant result is a scalar of the inputs'
        floating type."""
        if isinstance(expr, Const):
            return [f"{target} = {printer.typed(printer.doprint(expr))}"]
        return [f"{target} = {printer.doprint(expr)}"]

    def stack(self, items: str, shape: str) -> str:
        """The columns of a full Hessian or Jacobian, stacked on a last axis
        (JAX's arrays take no item assignment; neither do torch's in autograd)."""
        m = self.module
        return f"{m}.stack([{m}.broadcast_to(c, {shape}) for c in {items}], -1)"

    def helpers(self, exprs) -> list[str]:
        """The helper functions the expressions call, by operator name."""
        used = {node.op for node in postorder(exprs)
                if isinstance(node, Apply) and node.op in self.helper_sources}
        return [self.helper_sources[op] for op in sorted(used)]
