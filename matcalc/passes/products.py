"""Rules that reuse a matrix product the forward pass forms, and the set of
the nodes it forms.

A product the forward pass only traces is not formed (tr(A B) is a sum of
A ⊙ Bᵀ), so it does not count as computed; a rule that would name such a
product in a derivative would make the forward pass form it, and does not.
"""

from __future__ import annotations

from ..ir.expr import Expr, const, is_op
from ..ops import add, is_symmetric, matmul, mul, transpose
from ..ops.builders import inv
from ..ops.symmetry import CHAIN
from .collect import _scaled_chain, _scalars_out, _unmark


class Formed(frozenset):
    """The nodes whose values the code forms; `traced`, the products it
    only traces."""

    def __new__(cls, nodes=(), traced=()):
        out = super().__new__(cls, nodes)
        out.traced = frozenset(traced)
        return out


def formed(nodes: list) -> Formed:
    """The nodes whose values the code forms: a product A B used only in
    tr(A B) is not (the trace is a sum of A ⊙ Bᵀ)."""
    users: dict[Expr, list] = {}
    for node in nodes:
        for a in node.args:
            users.setdefault(a, []).append(node)
    traced = {n for n in nodes if is_op(n, "matmul") and users.get(n)
              and all(is_op(u, "trace") for u in users[n])}
    return Formed((n for n in nodes if n not in traced), traced)


def computed_product(node: Expr, computed: set) -> Expr | None:
    """F₁ ⋯ A B ⋯ Fₖ = F₁ ⋯ (A B) ⋯ Fₖ where the forward pass computes A B
    (or (A B)ᵀ = Bᵀ Aᵀ) and A or B is square, so the reused product is no
    larger than the factor it replaces: Σ⁻¹ Rᵀ R Σ⁻¹ = (R Σ⁻¹)ᵀ (R Σ⁻¹).
    Scalars and adjoint marks inside the chain are read through (Σ⁻¹ (Rᵀ
    (R / 2)) Σ⁻¹ = (R Σ⁻¹)ᵀ (R Σ⁻¹) / 2), and only where the rule applies."""
    if not (is_op(node, "matmul")) or node in computed:
        return None
    chain = _scaled_chain(node, computed, marks=True, limit=CHAIN)
    if chain is None or len(chain[1]) < 3 or any(f.ndim != 2 for f in chain[1]):
        return None
    scale, factors = chain
    result = _reused(factors, computed)
    return result if result is None or scale == 1 else mul(const(scale), result)


def _reused(factors: list, computed: set) -> Expr | None:
    """The chain F₁ ⋯ Fₖ with a product the forward pass computes reused."""
    for i, (a, b) in enumerate(zip(factors, factors[1:])):
        if a.shape[0] != a.shape[1] and b.shape[0] != b.shape[1]:
            continue
        for product in (matmul(a, b), transpose(matmul(transpose(b), transpose(a)))):
            transposed = is_op(product, "transpose")
            inner = product.args[0] if transposed else product
            if inner in computed:
                out = factors[:i] + [product] + factors[i + 2:]
                result = out[0]
                for f in out[1:]:
                    result = matmul(result, f)
                return result
    return None


def distributed_over_computed(node: Expr, computed: set) -> Expr | None:
    """P (c A + d B) = c P A + d P B where the forward pass computes P A and
    P B (up to scalars), and likewise on the right: the reverse pass sums
    the adjoints of a shared x @ P before it multiplies them by P, and the
    products, once apart, are like terms of the values computed (K (c a / 2
    + K a / 2) beside c K a / 2 + K K a / 2)."""
    if not is_op(node, "matmul") or node in computed:
        return None
    left, right = node.args
    for s, other, on_right in ((right, left, True), (left, right, False)):
        terms = _unmark(s)
        if not is_op(terms, "add") or any(t.shape != terms.shape for t in terms.args):
            continue
        parts = [matmul(other, t) if on_right else matmul(t, other) for t in terms.args]
        if all(_scalars_out(p) in computed for p in parts):
            return add(*parts)
    return None


def _factors(product: Expr) -> tuple[Expr, Expr] | None:
    """(A, B) for A B, and (A⁻¹, B) for solve(A, B), of matrices."""
    if is_op(product, "matmul", "solve") and all(a.ndim == 2 for a in product.args):
        a, b = product.args
        return (inv(a), b) if product.op == "solve" else (a, b)
    return None


def computed_symmetric_product(node: Expr, computed: set) -> Expr | None:
    """A (A B)ᵀ = (A B) A and (A B)ᵀ B = B (A B) for symmetric A and B, where
    the forward pass computes A B (or solve(S, B) = S⁻¹ B): the product
    reused, not transposed (S⁻¹ (S⁻¹ C)ᵀ = (S⁻¹ C) S⁻¹, the textbook's
    S⁻¹ C S⁻¹ for C = XᵀX). Not where the forward pass only traces the
    result (tr((A B) A)), which naming it would make the forward pass form."""
    if not is_op(node, "matmul") or node in computed:
        return None
    left, right = node.args
    for flipped, other, side in ((right, left, 0), (left, right, 1)):
        product = flipped.args[0] if is_op(flipped, "transpose") else None
        factors = _factors(product) if product in computed else None
        if factors and other is factors[side] and all(map(is_symmetric, factors)):
            result = matmul(product, other) if side == 0 else matmul(other, product)
            return None if result in getattr(computed, "traced", ()) else result
    return None
