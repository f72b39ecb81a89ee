"""Rules for diagonal matrices: a vector times I is diag, a broadcast vector
times diag(b), and sums of diagonals, are one diagonal (the Hessians of elementwise functions print
as diag(f''(x)), not a[:, None] * diag(b) + diag(c))."""

from __future__ import annotations

from ..ir.expr import Expr, const, is_const, is_op
from ..ir.shapes import broadcast
from .builders import _broadcast_vector, _coefficient, add, diag, mul, ones
from .identities import _product, _scaled_identity
from .rulebook import rule


@rule("mul")
def mul_eye_diag(*factors: Expr) -> Expr | None:
    """a ⊙ I = diag(a)

    for a vector a (or a[:, None], a[None, :]) as long as I, and a ⊙ (s I)
    = diag(s a) for a scalar s (as I / T)."""
    if len(factors) > 4:                     # at most c, ones and two more
        return None
    c, kept, shape = _product(factors)
    if len(kept) != 2:
        return None
    scaled = [_scaled_identity(k)[0] for k in kept]
    if scaled[0] is not None and kept[0].shape:
        kept, scaled = kept[::-1], scaled[::-1]
    vector, (s, identity) = kept[0], (scaled[1], kept[1])
    v = _broadcast_vector(vector)[1]
    if s is not None and identity.ndim == 2 and v is not None and v.shape[0] == identity.shape[0]:
        # diag(v) is itself built (diag(c 1) = c I), so multiplied again; (s I) / d too
        return mul(const(c), ones(shape), diag(v if is_const(s, 1) else mul(s, v)))
    return None


@rule("mul")
def mul_vector_diag(*factors: Expr) -> Expr | None:
    """a ⊙ diag(b) = diag(a ⊙ b)

    for a vector a (or a[:, None], a[None, :]) as long as b: the product is
    0 off the diagonal."""
    c, kept, shape = _product(factors)
    if len(kept) != 2 or len(factors) > 4:
        return None
    diagonal, other = kept if is_op(kept[0], "diagm") else kept[::-1]
    v = _broadcast_vector(other)[1]
    if not is_op(diagonal, "diagm") or v is None or v.shape != diagonal.args[0].shape:
        return None
    return mul(const(c), ones(shape), diag(mul(v, diagonal.args[0])))


@rule("add")
def add_diagonals(*terms: Expr) -> Expr | None:
    """c diag(a) + d diag(b) = diag(c a + d b)"""
    shape = broadcast(*(t.shape for t in terms))
    diagonals = [t for t in terms if is_op(_coefficient(t)[1], "diagm") and t.shape == shape]
    if len(diagonals) < 2:
        return None
    inner = add(*(mul(const(c), d.args[0]) for c, d in map(_coefficient, diagonals)))
    return add(diag(inner), *(t for t in terms if t not in diagonals))
