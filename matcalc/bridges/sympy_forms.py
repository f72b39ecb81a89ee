"""The SymPy forms of matcalc's functions of one scalar, and SymPy's shapes.

An elementwise operator `f` is written as SymPy's function of one scalar:
`sympy.<f>` where SymPy has a function of that name (`exp`, `sin`, `sinh`),
else an undefined `sympy.Function("f")`. `SCALARS` lists only the
exceptions: SymPy's other names (`Abs`, `asin`) and the formulas for what
SymPy has no function for (σ(u) = 1/(1 + e⁻ᵘ), relu(u) = max(u, 0), ...).
Every elementwise operator of the table, also one registered at run time,
thereby has a SymPy form and reads back.

The shape helpers write matcalc's broadcasting and reductions with
`OneMatrix`: vectors are n x 1 columns, Σx = 1ᵀx, Σ_rows X = Xᵀ1.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import sympy
from sympy import HadamardProduct, MatMul, MatrixExpr, OneMatrix, Trace, Transpose
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from ..ops import OPS

# The elementwise functions whose SymPy form is not `sympy.<name>`.
SCALARS: dict[str, Callable] = {
    "abs": sympy.Abs, "arcsin": sympy.asin, "arccos": sympy.acos, "arctan": sympy.atan,
    "sigmoid": lambda u: 1 / (1 + sympy.exp(-u)),
    "relu": lambda u: sympy.Max(u, 0),
    "softplus": lambda u: sympy.log(1 + sympy.exp(u)),
    "step": lambda u: sympy.Heaviside(u, 0),
    "log1p": lambda u: sympy.log(1 + u),
    "expm1": lambda u: sympy.exp(u) - 1,
    "square": lambda u: u ** 2,
    "log2": lambda u: sympy.log(u) / sympy.log(2),
    "log10": lambda u: sympy.log(u) / sympy.log(10),
    "arcsinh": sympy.asinh, "arccosh": sympy.acosh, "arctanh": sympy.atanh,
    "silu": lambda u: u / (1 + sympy.exp(-u)),
    "gelu": lambda u: u * (1 + sympy.erf(u / sympy.sqrt(2))) / 2,
    "elu": lambda u: sympy.Piecewise((u, u > 0), (sympy.exp(u) - 1, True)),
    "leaky_relu": lambda u: sympy.Piecewise((u, u >= 0), (u / 100, True)),
}


@functools.lru_cache(maxsize=None)
def _sympy_has(name: str) -> Callable | None:
    """SymPy's function `name` of one scalar, or None where SymPy has none."""
    f = getattr(sympy, name, None)
    if not (isinstance(f, sympy.FunctionClass) or inspect.isfunction(f)):
        return None
    try:
        return f if isinstance(f(sympy.Dummy("u")), sympy.Expr) else None
    except (TypeError, ValueError, AttributeError):
        return None


def scalar_function(name: str) -> Callable:
    """The SymPy function of one scalar the elementwise operator `name` is."""
    if name in SCALARS:
        return SCALARS[name]
    return _sympy_has(name) or sympy.Function(name)


def elementwise_names() -> tuple[str, ...]:
    """The elementwise operators of the table, in the table's order."""
    return tuple(name for name, op in OPS.items() if op.elementwise)


def read_order() -> list[tuple[str, Callable]]:
    """(name, SymPy function) of every elementwise operator, in the order
    they are recognised when reading back: the larger template first, so a
    template that contains another wins (softplus = log(1 + eᵘ) before log,
    σ before exp); ties keep the table's order."""
    return _ordered(elementwise_names(), tuple(SCALARS.items()))


@functools.lru_cache(maxsize=8)
def _ordered(names: tuple, exceptions: tuple) -> list[tuple[str, Callable]]:
    w = sympy.Dummy("w")
    pairs = [(name, scalar_function(name)) for name in names]
    return sorted(pairs, key=lambda pair: -_size(pair[1](w)))


def _size(s) -> int:
    return sum(1 for _ in sympy.preorder_traversal(s))


def is_power(f: Callable) -> bool:
    """Whether `f(u)` is a power of u (sqrt, square): a power of a scalar
    reads back as a power, not as the function."""
    w = sympy.Dummy("w")
    body = f(w)
    return isinstance(body, sympy.Pow) and body.args[0] == w


# ----------------------------------------------------------------- shapes ---

def is_matrix(s) -> bool:
    return isinstance(s, MatrixExpr) or getattr(s, "is_Matrix", False)


def as_scalar(s):
    """A SymPy scalar for a matcalc scalar (a 1 x 1 matrix becomes its trace)."""
    return Trace(s) if is_matrix(s) else s


def column(shape):
    """SymPy's shape of a matcalc shape (vectors are columns)."""
    if len(shape) == 1:
        return (shape[0], sympy.Integer(1))
    return tuple(shape)


def matmul(*factors):
    """A flat SymPy product (nested products spliced, coefficients folded)."""
    return MatMul(*factors, evaluate=True)


def hadamard(*factors):
    return factors[0] if len(factors) == 1 else HadamardProduct(*factors)


def broadcast_to(s, shape, target):
    """The SymPy form of `s` (matcalc shape `shape`) broadcast to `target`:
    1 s 1ᵀ for a scalar, 1 sᵀ for a vector over rows."""
    if tuple(shape) == tuple(target) or not target:
        return s
    rows, cols = column(target)
    if not shape:
        if is_matrix(s):  # 1 x 1: 1 s 1ᵀ
            if cols == 1:
                return matmul(OneMatrix(rows, 1), s)
            return matmul(OneMatrix(rows, 1), s, OneMatrix(1, cols))
        return MatMul(s, OneMatrix(rows, cols))
    if len(shape) == 1:  # a vector broadcast over the rows of a matrix
        return MatMul(OneMatrix(rows, 1), Transpose(s))
    if shape[0] == 1 and rows != 1:
        s = MatMul(OneMatrix(rows, 1), s)
    if shape[1] == 1 and cols != 1:
        s = MatMul(s, OneMatrix(1, cols))
    return s


def elementwise(name: str, s, shape):
    """f(s) for the elementwise operator `name`: f applied to a scalar, or
    `ElementwiseApplyFunction` of u ↦ f(u) to a matrix."""
    f = scalar_function(name)
    if not shape and not is_matrix(s):
        return f(s)
    u = sympy.Dummy("u")
    return ElementwiseApplyFunction(sympy.Lambda(u, f(u)), s)


def total(s, shape):
    """sum over everything: 1ᵀ s (vector) or 1ᵀ s 1 (matrix)."""
    if not shape:
        return s
    rows, cols = column(shape)
    if len(shape) == 1:
        return MatMul(OneMatrix(1, rows), s)
    return MatMul(OneMatrix(1, rows), s, OneMatrix(cols, 1))


def sum_axis(s, shape, axis):
    """sum(s, axis): everything, Xᵀ1 (axis 0, column sums) or X1 (axis 1)."""
    if axis is None:
        return total(s, shape)
    rows, cols = column(shape)
    if axis == 0:  # column sums, a vector: (1ᵀ X)ᵀ = Xᵀ 1
        return MatMul(Transpose(s), OneMatrix(rows, 1))
    return MatMul(s, OneMatrix(cols, 1))
