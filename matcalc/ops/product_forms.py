"""Rules for matrix products with an outer product or a transpose in them:
one form for equal products, and no matrix formed where a vector does.

A u vᵀ is (A u) vᵀ: a matrix-vector product where the product with the
outer product takes a matrix-matrix one (and so for a sum of outer products); xᵀ Aᵀ is A x; (u vᵀ)ᵀ is v uᵀ and
(c X)ᵀ is c Xᵀ, so the like terms these make are collected.
"""

from __future__ import annotations

from ..ir.expr import Expr, const, is_op
from .builders import _coefficient, add, div, matmul, mul, outer, transpose
from .rulebook import rule


@rule("matmul")
def matmul_outer(a: Expr, b: Expr) -> Expr | None:
    """A (u vᵀ) = (A u) vᵀ

    and (u vᵀ) B = u (vᵀ B); for a vector x, xᵀ (u vᵀ) = (xᵀ u) v and
    (u vᵀ) x = (vᵀ x) u."""
    if is_op(b, "outer") and a.ndim == 2:
        return outer(matmul(a, b.args[0]), b.args[1])
    if is_op(b, "outer"):
        return mul(matmul(a, b.args[0]), b.args[1])
    if is_op(a, "outer") and b.ndim == 2:
        return outer(a.args[0], matmul(a.args[1], b))
    if is_op(a, "outer"):
        return mul(matmul(a.args[1], b), a.args[0])
    return None


@rule("matmul")
def matmul_sum_of_outers(a: Expr, b: Expr) -> Expr | None:
    """(Σ cᵢ uᵢ vᵢᵀ) B = Σ cᵢ uᵢ (vᵢᵀ B)

    and B (Σ cᵢ uᵢ vᵢᵀ) = Σ cᵢ (B uᵢ) vᵢᵀ: a sum of outer products is
    never formed to be multiplied."""
    for s, first in ((a, True), (b, False)):
        terms = s.args if is_op(s, "add") else ()
        parts = [_coefficient(t) for t in terms]
        if terms and all(is_op(r, "outer") for _, r in parts):
            return add(*(mul(const(c), matmul(r, b) if first else matmul(a, r))
                         for c, r in parts))
    return None


@rule("matmul")
def matmul_vector_transposed(a: Expr, b: Expr) -> Expr | None:
    """xᵀ Aᵀ = A x for a vector x"""
    if a.ndim == 1 and is_op(b, "transpose"):
        return matmul(b.args[0], a)
    return None


@rule("transpose")
def transpose_outer(x: Expr) -> Expr | None:
    """(u vᵀ)ᵀ = v uᵀ"""
    return outer(x.args[1], x.args[0]) if is_op(x, "outer") else None


@rule("transpose")
def transpose_coefficient(x: Expr) -> Expr | None:
    """(c X)ᵀ = c Xᵀ

    and (X / s)ᵀ = Xᵀ / s for a scalar s."""
    if is_op(x, "div") and not x.args[1].shape and x.args[0].shape == x.shape:
        return div(transpose(x.args[0]), x.args[1])
    c, rest = _coefficient(x)
    if c != 1 and rest is not None and rest.shape == x.shape:
        return mul(const(c), transpose(rest))
    return None
