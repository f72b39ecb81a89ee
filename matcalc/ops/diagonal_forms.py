"""Rules for diagonal matrices: a broadcast vector times diag(b), and sums
of diagonals, are one diagonal (the Hessians of elementwise functions print
as diag(f''(x)), not a[:, None] * diag(b) + diag(c))."""

from __future__ import annotations

from ..ir.expr import Expr, const, is_op
from .builders import _coefficient, add, diag, mul, ones
from .identities import _product
from .rulebook import rule


@rule("mul")
def mul_vector_diag(*factors: Expr) -> Expr | None:
    """a ⊙ diag(b) = diag(a ⊙ b)

    for a vector a (or a[:, None], a[None, :]) as long as b: the product is
    0 off the diagonal."""
    c, kept, shape = _product(factors)
    if len(kept) != 2 or len(factors) > 4:
        return None
    diagonal, other = kept if is_op(kept[0], "diagm") else kept[::-1]
    v = other if other.ndim == 1 else other.args[0] if is_op(other, "col", "row") else None
    if not is_op(diagonal, "diagm") or v is None or v.shape != diagonal.args[0].shape:
        return None
    return mul(const(c), ones(shape), diag(mul(v, diagonal.args[0])))


@rule("add")
def add_diagonals(*terms: Expr) -> Expr | None:
    """c diag(a) + d diag(b) = diag(c a + d b)"""
    diagonals = [t for t in terms if is_op(_coefficient(t)[1], "diagm")]
    if len(diagonals) < 2:
        return None
    inner = add(*(mul(const(c), d.args[0]) for c, d in map(_coefficient, diagonals)))
    return add(diag(inner), *(t for t in terms if t not in diagonals))
