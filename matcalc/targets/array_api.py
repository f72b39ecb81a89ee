"""The array-API target: one module that runs unchanged on NumPy, CuPy,
PyTorch, JAX and Dask arrays through the Python array API standard.

Each function takes `xp = array_namespace(*inputs)` (array-api-compat, a
dependency of the generated module only) and computes with `xp` alone:
results in the inputs' library, on their device, in their floating type; no
item assignment (full Hessians and Jacobians are stacked from columns), no
write but `t += a` into a product just made (JAX and Dask rebind `t`), no
Python branch on a value, so a Dask graph is built without computing
anything.
"""

from __future__ import annotations

import sympy
from sympy.printing.numpy import NumPyPrinter as SympyNumPyPrinter

from ..ad.gradient import Gradient
from ..ir.expr import Apply, Const, is_op, postorder
from ..ops.indexing import negative_step
from ..passes.lowering import TRACE_OF_PRODUCT, Capabilities, written_as_matmul
from . import array_api_guards as guards
from . import bounds
from . import module
from . import precedence as P
from .array_api_forms import FORMS, HELPERS
from .forms import with_required
from .naming import DTYPE_CODE
from .numpy import _may_be_zero_denominator, _of_constants
from .printer import Printer
from .numpy import load  # noqa: F401  (a generated module loads as NumPy's does)

_CHECKS = {"_checked", "_by_name", "_direction", "_device_of", "array_namespace",
           "_NAMESPACES", "is_numpy_array"}


def _scalar(code: str) -> str:
    """A Python number as a 0-d array of the inputs' type and device."""
    return f"xp.asarray({code}, dtype={DTYPE_CODE}, device=device)"


class ArrayApiPrinter(Printer):
    """Array-API source (`xp.`), also of a lowered product chain."""

    language = "array-api"
    forms = FORMS

    def _print_scalar(self, value):
        """A constant in dimensions; one whose denominator may be 0 (N - 1
        at N = 1) divides as a 0-d array (inf or nan, never Python's
        ZeroDivisionError)."""
        value = sympy.sympify(value)
        if value.is_Add or not _may_be_zero_denominator(value):
            return super()._print_scalar(value)
        num, den = sympy.fraction(value)
        return f"{self.arg_scalar(num, P.MUL)} / {_scalar(self.scalar(den))}", P.MUL

    def constant(self, value):
        """An exact constant (log(2), pi) as a Python float; a function of
        dimensions (log(N)) of 0-d arrays of the inputs' type and device."""
        if value.is_number:
            return repr(float(value))
        arrays = {d: sympy.Symbol(_scalar(self.symbol(d))) for d in value.free_symbols}
        return SympyNumPyPrinter().doprint(value.xreplace(arrays)).replace("numpy.", "xp.")

    def _print_form(self, node):
        """A function of constants alone (sqrt(K)) takes them as 0-d arrays
        of the inputs' type and device."""
        if not _of_constants(node):
            return super()._print_form(node)
        form = self.form(node)
        args = [_scalar(self.doprint(a)) for a in node.args]
        return form.render(args, dict(node.params)), form.prec

    def _print_transpose(self, node):
        """`x.T` of a matrix; a vector or scalar is its own transpose (the
        standard defines `.T` for two axes only)."""
        if node.args[0].ndim < 2:
            return self.print(node.args[0])
        return f"{self.arg(node.args[0], P.POSTFIX)}.T", P.POSTFIX

    def _print_einsum(self, node):
        """Σ_ij A_ij B_ij (B_ji for "ij,ji") as one `xp.vecdot` of the
        arrays flattened: no temporary of A's size, and NumPy's vecdot is
        BLAS ddot (3-10x faster than sum(A * B)); Σ A_ij² as
        `_sum_of_squares(xp, A)`, which flattens A once."""
        a, b = node.args
        if _is_square(node):
            return f"_sum_of_squares(xp, {self.print(a)[0]})", P.ATOM
        flat = [self.print(a)[0], self.print(b)[0]]
        if node.param("subscripts") == TRACE_OF_PRODUCT:
            flat[1] = f"{self.arg(b, P.POSTFIX)}.T"
        if a.ndim > 1:
            flat = [f"xp.reshape({x}, (-1,))" for x in flat]
        return f"xp.vecdot({', '.join(flat)})", P.ATOM

    def negated_product(self, node) -> str:
        """A @ B of a `subtract_product` node a - A @ B, written A @ (-B)
        (the operand of fewer axes negated, B on a tie: one pass over the
        smaller operand)."""
        _, left, right = node.args
        if right.ndim <= left.ndim:
            return f"{self.arg(left, P.MUL)} @ (-{self.arg(right, P.NEG)})"
        return f"(-{self.arg(left, P.NEG)}) @ {self.arg(right, P.MUL + 1)}"

    def _print_subtract_product(self, node):
        """a - A @ B where it is no statement of its own (`assignment`):
        `a + A @ (-B)`."""
        return f"{self.arg(node.args[0], P.ADD)} + {self.negated_product(node)}", P.ADD

    def _print_multi_dot(self, node):
        """`_multi_dot(A, B, C)`: the order chosen from the runtime shapes."""
        return f"_multi_dot({', '.join(self.print(m)[0] for m in node.args)})", P.ATOM


def _is_square(node) -> bool:
    """Whether `node` is Σ A_ij², an einsum of an array of two or more axes
    with itself."""
    return (is_op(node, "einsum") and node.args[0] == node.args[1] and node.args[0].ndim > 1
            and node.param("subscripts") != TRACE_OF_PRODUCT)


def _needs_dtype(node) -> bool:
    """Whether printing the lowered `node` names `dtype` and `device`."""
    if isinstance(node, Apply):
        return node.op in ("ones", "zeros", "eye", "eye_rect", "full", "indicator") \
            or _of_constants(node)
    return isinstance(node, Const) and (bool(node.value.atoms(sympy.Function)) or any(
        _may_be_zero_denominator(t) for t in sympy.Add.make_args(node.value)))


class ArrayApiTarget:
    """The array API's part of a generated module (see `module.Target`)."""

    capabilities = Capabilities(einsum=True, multi_dot=True, out=True,  # out: a - A @ B, see below
                                tensordot=True, batched_matmul=True, broadcasts=True,
                                casts=True, vector_first=True, updates=True)
    imports = ("from array_api_compat import array_namespace",
               "from array_api_compat import device as _device_of, is_numpy_array")
    reserved = frozenset({"xp", "device", "_ON_CPU", "_numbers"} | _CHECKS | bounds.NAMES
                         | {f"_{op}" for op in HELPERS})
    context = ("xp", "device")
    note = ("Needs array-api-compat (pip install array-api-compat); runs on NumPy, "
            "CuPy, PyTorch, JAX and Dask arrays through the Python array API "
            "standard, returning arrays of the inputs' library, device and "
            "floating type.")
    guards = guards
    printer = ArrayApiPrinter
    needs_dtype = staticmethod(_needs_dtype)

    @staticmethod
    def assignment(target: str, expr, printer: ArrayApiPrinter) -> list[str]:
        """`target = expr`; a constant result is a 0-d array of the inputs'
        type and device. a - A @ B (`subtract_product`, of A @ B's shape) is
        `t = A @ (-B)` then `t += a`: NumPy, PyTorch and CuPy add into the
        new product's memory, where `a + A @ (-B)` would make a second array
        of its size (the array API has no `out=`); JAX and Dask arrays
        have no in-place `+=`, so Python rebinds `t` to `t + a`. So is
        A @ B + c (`update`): `t = A @ B`, then `t += c`. The product has
        the result's type, as `_checked` gives every input the same
        floating type."""
        if isinstance(expr, Const):
            return [f"{target} = {_scalar(printer.doprint(expr))}"]
        if is_op(expr, "update"):  # t = A @ B, then t += c, t *= m, as for a - A @ B
            return module.in_place(target, expr, printer)
        if not is_op(expr, "subtract_product"):
            return [f"{target} = {printer.doprint(expr)}"]
        return [f"{target} = {printer.negated_product(expr)}",
                f"{target} += {printer.doprint(expr.args[0])}"]

    @staticmethod
    def helpers(exprs) -> list[str]:
        """The helper functions the lowered expressions call, by operator (an
        einsum printed `a @ b` calls none)."""
        nodes = [node for node in postorder(exprs) if isinstance(node, Apply)
                 and not (node.op == "contract" and written_as_matmul(node))]
        used = {node.op for node in nodes if node.op != "index" or negative_step(node.param("key"))}
        used |= {"sum_of_squares"} if any(map(_is_square, nodes)) else set()
        used |= {"copy"} if "broadcast_copy" in used else set()
        return [HELPERS[op] for op in sorted(with_required(used) & set(HELPERS))]

    @staticmethod
    def result_type(args: str) -> str:
        """`dtype = xp.result_type(X, y)`: the inputs' floating type."""
        return f"{DTYPE_CODE} = xp.result_type({args})"

    @staticmethod
    def zeros(shape: str) -> str:
        return f"xp.zeros({shape}, dtype={DTYPE_CODE}, device=device)"

    @staticmethod
    def eye(size: str) -> str:
        return f"xp.eye({size}, dtype={DTYPE_CODE}, device=device)"

    @staticmethod
    def reshape(x: str, shape: str) -> str:
        return f"xp.reshape({x}, {shape})"

    @staticmethod
    def permute(x: str, axes: str) -> str:
        return f"xp.permute_dims({x}, {axes})"

    @staticmethod
    def stack(items: str, shape: str) -> str:
        return f"xp.stack([xp.broadcast_to(c, {shape}) for c in {items}], axis=-1)"


TARGET = ArrayApiTarget()


def generate(gradient: Gradient, extras=()) -> str:
    """The source of the array-API module for `gradient` and any
    second-order results (hessian, hvp, jacobian), deterministic."""
    return module.generate(gradient, TARGET, extras)
