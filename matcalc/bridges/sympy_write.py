"""Writing matcalc expressions in SymPy: the forms registry `FORMS`.

`FORMS` maps an operator's name to its writer `(node, args) -> SymPy`,
where `args` are the node's arguments already written in SymPy. An
elementwise operator needs no entry: its default is its SymPy function of
one scalar (`sympy_forms.scalar_function`) applied elementwise. An operator
with neither is one SymPy cannot represent (`unkron_left`, `unkron_right`).
"""

from __future__ import annotations

from typing import Callable

import sympy
from sympy import (Determinant, HadamardPower, HadamardProduct, Identity, Inverse,
                   KroneckerProduct, MatAdd, MatMul, OneMatrix, Trace, Transpose, ZeroMatrix)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf

from ..errors import MatcalcError
from ..ir.expr import Apply, Const, Expr, Var, postorder
from ..ops import OPS
from .sympy_forms import (as_scalar, broadcast_to, column, elementwise, hadamard, is_matrix,
                          matmul, sum_axis, total)

FORMS: dict[str, Callable] = {}


def form(*names: str):
    """Register the decorated writer as the SymPy form of the operators `names`."""
    def register(writer: Callable) -> Callable:
        for name in names:
            FORMS[name] = writer
        return writer
    return register


def unsupported(what: str) -> MatcalcError:
    return MatcalcError(f"SymPy cannot represent {what}")


def _shapes(n: Apply) -> list:
    return [x.shape for x in n.args]


FORMS.update({
    "name": lambda n, a: a[0],
    "adjoint": lambda n, a: a[0],
    "transpose": lambda n, a: Transpose(a[0]),
    "outer": lambda n, a: matmul(a[0], Transpose(a[1])),
    "col": lambda n, a: a[0],
    "row": lambda n, a: Transpose(a[0]),
    "sum": lambda n, a: sum_axis(a[0], n.args[0].shape, n.param("axis")),
    "trace": lambda n, a: Trace(a[0]),
    "det": lambda n, a: Determinant(a[0]),
    "logdet": lambda n, a: sympy.log(Determinant(a[0])),
    "inv": lambda n, a: Inverse(a[0]),
    "solve": lambda n, a: matmul(Inverse(a[0]), a[1]),
    "eye": lambda n, a: Identity(n.shape[0]),
    "ones": lambda n, a: OneMatrix(*column(n.shape)),
    "zeros": lambda n, a: ZeroMatrix(*column(n.shape)),
    "diagm": lambda n, a: DiagMatrix(a[0]),
    "diag": lambda n, a: DiagonalOf(a[0]),
    "kron": lambda n, a: KroneckerProduct(a[0], a[1]),
    "norm1": lambda n, a: total(elementwise("abs", a[0], n.args[0].shape), n.args[0].shape),
})


@form("add")
def _add(n: Apply, a: list):
    """A sum: scalars with `Add`, a 1 x 1 term making it `MatAdd` (c I₁), arrays broadcast."""
    if not n.shape:
        if any(is_matrix(x) for x in a):
            return MatAdd(*(x if is_matrix(x) else MatMul(x, Identity(1)) for x in a))
        return sympy.Add(*a)
    return MatAdd(*(broadcast_to(x, s, n.shape) for x, s in zip(a, _shapes(n))))


@form("mul")
def _mul(n: Apply, a: list):
    """An elementwise product: the scalar factors' product times the arrays' Hadamard product."""
    shapes = _shapes(n)
    scalars = [x for x, s in zip(a, shapes) if not s]
    arrays = [broadcast_to(x, s, n.shape) for x, s in zip(a, shapes) if s]
    if not arrays:
        if any(is_matrix(x) for x in scalars):
            return MatMul(*scalars)
        return sympy.Mul(*scalars)
    coefficient = sympy.Mul(*(as_scalar(x) for x in scalars))
    return MatMul(coefficient, hadamard(*arrays)) if scalars else hadamard(*arrays)


@form("div")
def _div(n: Apply, a: list):
    """a / b: a b⁻¹ for a scalar b, else a ∘ b^∘(-1)."""
    (num, den), shapes, shape = a, _shapes(n), n.shape
    if not shapes[1]:
        if not shape:
            if is_matrix(den):
                return MatMul(num if is_matrix(num) else num * Identity(1), Inverse(den))
            return num / den
        return MatMul(1 / as_scalar(den), broadcast_to(num, shapes[0], shape))
    inverse = HadamardPower(broadcast_to(den, shapes[1], shape), -1)
    if not shapes[0]:
        return MatMul(as_scalar(num), inverse)
    return HadamardProduct(broadcast_to(num, shapes[0], shape), inverse)


@form("pow")
def _pow(n: Apply, a: list):
    """xᵉ for a scalar x, x^∘e for an array x and a constant e."""
    (base, e), shapes = a, _shapes(n)
    if shapes[1] or is_matrix(e):
        raise unsupported("an elementwise power with an array exponent")
    if not shapes[0] and not is_matrix(base):
        return base ** e
    if not isinstance(n.args[1], Const):
        raise unsupported("an elementwise power of an array with a variable exponent")
    return HadamardPower(base, e)


@form("matmul")
def _matmul(n: Apply, a: list):
    """A @ B; a vector on the left is the row xᵀ, and x @ A the column (xᵀA)ᵀ."""
    (x, y), (sx, sy) = a, _shapes(n)
    if len(sx) == 1:
        x = x.arg if isinstance(x, Transpose) else Transpose(x)
    out = matmul(x, y)
    if len(sx) == 1 and len(sy) == 2:
        return Transpose(out)
    return out


@form("norm")
def _norm(n: Apply, a: list):
    """‖x‖ = √(xᵀx), ‖X‖ = √tr(XᵀX), ‖c‖ = |c|."""
    shape = n.args[0].shape
    if len(shape) == 1:
        return elementwise("sqrt", MatMul(Transpose(a[0]), a[0]), ())
    if not shape:
        return sympy.Abs(a[0])
    return sympy.sqrt(Trace(MatMul(Transpose(a[0]), a[0])))


@form("maximum", "minimum")
def _extremum(n: Apply, a: list):
    """max(a, b) of scalars, or of an array and a constant u ↦ max(u, c) elementwise."""
    op, shapes = n.op, _shapes(n)
    if shapes[0] and shapes[1]:
        raise unsupported(f"{op} of two arrays (only of an array and a scalar)")
    f = sympy.Max if op == "maximum" else sympy.Min
    if not n.shape:
        return f(as_scalar(a[0]), as_scalar(a[1]))
    array, scalar = (a[0], a[1]) if shapes[0] else (a[1], a[0])
    if is_matrix(scalar) or not isinstance(n.args[1 if shapes[0] else 0], Const):
        raise unsupported(f"{op} of an array and a variable")
    u = sympy.Dummy("u")
    return ElementwiseApplyFunction(sympy.Lambda(u, f(u, scalar)), array)


@form("softmax", "logsumexp")
def _softmax(n: Apply, a: list):
    """logsumexp(x) = log Σ eˣ and softmax(x) = eˣ / Σ eˣ, the sums along the axis."""
    x, shape, axis = a[0], n.args[0].shape, n.param("axis")
    e = elementwise("exp", x, shape)
    sums = sum_axis(e, shape, axis)
    if n.op == "logsumexp":
        return elementwise("log", sums, () if axis is None else (1,))
    if axis is None:
        return hadamard(e, broadcast_to(HadamardPower(sums, -1), (), shape))
    rows, cols = column(shape)
    inverse = HadamardPower(sums, -1)
    spread = (MatMul(inverse, OneMatrix(1, cols)) if axis == 1
              else MatMul(OneMatrix(rows, 1), Transpose(inverse)))
    return HadamardProduct(e, spread)


def write(n: Expr, a: list):
    """The SymPy form of one node given its arguments' SymPy forms `a`."""
    if len(n.shape) > 2:
        raise MatcalcError(f"SymPy's matrix expressions have at most two dimensions; "
                           f"{n} has {len(n.shape)}")
    if isinstance(n, Var):
        if not n.shape:
            return sympy.Symbol(n.name, real=True)
        if n.ndim > 2:
            raise unsupported(f"'{n.name}', an array of {n.ndim} axes (SymPy's matrix "
                              "expressions have two)")
        return sympy.MatrixSymbol(n.name, *column(n.shape))
    if isinstance(n, Const):
        return n.value
    writer = FORMS.get(n.op)
    if writer is not None:
        return writer(n, a)
    if n.op in OPS and OPS[n.op].elementwise:
        if n.params:  # its SymPy form is the default's (elu's alpha = 1)
            raise unsupported(f"{n.op} with " + ", ".join(f"{k}={v}" for k, v in n.params))
        return elementwise(n.op, a[0], n.shape)
    raise unsupported(f"'{n.op}' ({n.op}({', '.join('…' for _ in a)}))"
                      if n.op in OPS else f"'{n.op}'")


def write_all(root: Expr):
    """The SymPy form of `root`, each shared node written once."""
    done: dict[int, object] = {}
    for node in postorder([root]):
        done[id(node)] = write(node, [done[id(a)] for a in node.args])
    return done[id(root)]
