"""The NumPy target: a readable NumPy module computing the function and its
gradients (the layout is `module.py`'s), printed by `NumpyPrinter` from the
program lowered with every capability NumPy has (`CAPABILITIES`).
"""

from __future__ import annotations

import linecache
import types

import sympy
from sympy.printing.numpy import NumPyPrinter as SympyNumPyPrinter

from . import bounds, guards
from ..ir.expr import Apply, Const, is_op, postorder
from ..ad.gradient import Gradient
from . import precedence as P
from ..passes.lowered_ops import LOWERED
from ..passes.lowering import SQUARES, Capabilities, subtracted
from . import module
from .naming import DTYPE_CODE
from .forms import with_required
from .numpy_forms import FORMS, HELPERS
from .printer import Printer

# The input checks' helper functions; the NumPy forms' are `_` + an operator
# name in HELPERS (`_softmax`), read when a name is made (one may be added).
_CHECKS = {"_checked", "_by_name", "_direction"}


def _may_be_zero_denominator(value: sympy.Expr) -> bool:
    """Whether a constant's denominator may be 0 at positive sizes (N - D)."""
    den = sympy.fraction(value)[1]
    return bool(den.free_symbols) and den.is_positive is not True


def _of_constants(node) -> bool:
    """Whether `node` is a function of constant scalars only, sqrt(K) (an
    operator, not a lowered node kind such as `full`)."""
    return isinstance(node, Apply) and node.op not in LOWERED and bool(node.args) and \
        all(isinstance(a, Const) for a in node.args)


def _needs_dtype(node) -> bool:
    """Whether printing the lowered `node` names the inputs' floating type
    `dtype`."""
    if isinstance(node, Apply):
        return node.op in ("ones", "zeros", "eye", "eye_rect", "full",
                           "fill", "indicator") or \
            _of_constants(node)
    return isinstance(node, Const) and any(
        _may_be_zero_denominator(t) for t in sympy.Add.make_args(node.value))


class NumpyPrinter(Printer):
    """NumPy source, also of the lowered node kinds (`passes.lowering`)."""

    language = "numpy"
    forms = FORMS

    def _print_scalar(self, value):
        """A constant in dimensions. One whose denominator may be 0 (N - 1 at
        N = 1) divides in the inputs' floating type, as NumPy does (inf or
        nan, with a RuntimeWarning), never Python's ZeroDivisionError."""
        value = sympy.sympify(value)
        if value.is_Add or not _may_be_zero_denominator(value):
            return super()._print_scalar(value)
        num, den = sympy.fraction(value)
        return f"{self.arg_scalar(num, P.MUL)} / {DTYPE_CODE}.type({self.scalar(den)})", P.MUL

    def constant(self, value):
        """An exact constant (log(2), pi) as a Python float, which takes the
        arrays' floating type; one in dimensions (log(N)) by SymPy's NumPy
        printer, whose `numpy.` is the module's `np.`."""
        if value.is_number:
            return repr(float(value))
        return SympyNumPyPrinter().doprint(value).replace("numpy.", "np.")

    def _print_form(self, node):
        """A function of constants alone (sqrt(K), log(2 * pi)) takes them as
        scalars of the inputs' floating type, so that its value has that
        type too (NumPy gives float64 for a Python number)."""
        if not _of_constants(node):
            return super()._print_form(node)
        form = self.form(node)
        args = [f"{DTYPE_CODE}.type({self.doprint(a)})" for a in node.args]
        return form.render(args, dict(node.params)), form.prec

    def _print_einsum(self, node):
        """Σ_ij A_ij B_ij as `np.vdot(A, B)` (BLAS ddot: 4-10x faster than
        einsum's loop from a few thousand elements on); Σ_ij A_ij B_ji as
        `np.einsum("ij,ji", A, B)`, one pass, no temporary."""
        items = ", ".join(self.print(a)[0] for a in node.args)
        if node.param("subscripts") in SQUARES.values():
            return f"np.vdot({items})", P.ATOM
        return f'np.einsum("{node.param("subscripts")}", {items})', P.ATOM

    def _print_multi_dot(self, node):
        """`np.linalg.multi_dot`, which picks the cheapest order from the
        shapes of the call (so symbolic dimensions need no estimate)."""
        items = ", ".join(self.print(m)[0] for m in node.args)
        return f"np.linalg.multi_dot([{items}])", P.ATOM

    def _print_mask(self, node):
        """The boolean mask `(x > 0)`, the cheapest form of step(x) NumPy
        multiplies."""
        return f"({self.print(node.args[0])[0]} > 0)", P.ATOM

    def _print_subtract_product(self, node):
        """a - A @ B where it is no statement of its own (`assignment`)."""
        return self.print(subtracted(node))


class NumpyTarget:
    """NumPy's part of a generated module (see `module.Target`)."""

    capabilities = Capabilities(einsum=True, multi_dot=True, out=True, masks=True,
                                item_assignment=True, tensordot=True, batched_matmul=True,
                                contraction_order=True, broadcasts=True, casts=True,
                                vector_first=True, updates=True)
    imports = ("import numpy as np",)
    module = "np"                    # the array library as the code names it
    permute_function = "transpose"

    @property
    def reserved(self) -> frozenset:
        """Names the module defines: np, the checks and the NumPy helpers."""
        return frozenset({"np"} | _CHECKS | bounds.NAMES | {f"_{op}" for op in HELPERS})
    guards = guards
    printer = NumpyPrinter

    @staticmethod
    def assignment(target: str, expr, printer: NumpyPrinter) -> list[str]:
        """`target = expr`. A constant result is a scalar of the inputs'
        type; a - A @ B (`subtract_product`) is computed into the new
        product, `t = A @ B` then `np.subtract(a, t, out=t)` (NumPy adds
        in place only into the left operand of '-'); A @ B + c (`update`)
        is `t = A @ B`, then `t += c`. The product has `a`'s type, as
        `_checked` gives every floating input the same one."""
        if isinstance(expr, Const):
            return [f"{target} = {DTYPE_CODE}.type({printer.doprint(expr)})"]
        if is_op(expr, "update"):  # t = A @ B, then t += c, t *= m
            return module.in_place(target, expr, printer)
        if not (is_op(expr, "subtract_product")):
            return [f"{target} = {printer.doprint(expr)}"]
        a, left, right = expr.args
        return [f"{target} = {printer.matrix_product(left, right)[0]}",
                f"np.subtract({printer.doprint(a)}, {target}, out={target})"]

    needs_dtype = staticmethod(_needs_dtype)

    @staticmethod
    def helpers(exprs) -> list[str]:
        """The NumPy helper functions the lowered expressions call, by
        operator name (`fill` places its value with `_unindex`)."""
        used = {"unindex" if node.op == "fill" else node.op for node in postorder(exprs)
                if isinstance(node, Apply)}
        return [HELPERS[op] for op in sorted(with_required(used) & set(HELPERS))]

    @staticmethod
    def result_type(args: str) -> str:
        """`dtype = np.result_type(X, y, 1.0)`: the inputs' floating type."""
        return f"{DTYPE_CODE} = np.result_type({', '.join(a for a in (args, '1.0') if a)})"

    @staticmethod
    def zeros(shape: str) -> str:
        return f"np.zeros({shape}, {DTYPE_CODE})"

    @staticmethod
    def empty(shape: str) -> str:
        return f"np.empty({shape}, {DTYPE_CODE})"

    @staticmethod
    def indices(shape: str) -> str:
        return f"np.ndindex(*{shape})"

    def reshape(self, x: str, shape: str) -> str:
        return f"{self.module}.reshape({x}, {shape})"

    def permute(self, x: str, axes: str) -> str:
        return f"{self.module}.{self.permute_function}({x}, {axes})"


TARGET = NumpyTarget()
CAPABILITIES = NumpyTarget.capabilities


def generate(gradient: Gradient, extras=()) -> str:
    """The source of the NumPy module for `gradient` and any second-order
    results (`matcalc.second`: hessian, hvp, jacobian), deterministic."""
    return module.generate(gradient, TARGET, extras)


def load(source: str, name: str) -> types.ModuleType:
    """Execute generated source as a module whose `.source` is the text."""
    filename = f"<matcalc {name}>"
    module = types.ModuleType(f"matcalc_generated_{name}")
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    module.source = source
    return module
