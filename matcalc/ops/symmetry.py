"""Symmetry read from structure: whether x = xᵀ follows from how x is built."""

from __future__ import annotations

from collections import Counter

from ..ir.expr import Apply, Const, Expr, Var, apply, is_op
from .core import OPS, _broadcast_vector

# Longest matrix-product chain read factor by factor (for like terms in any
# grouping, and for symmetry); a longer one is taken as it is grouped, and as
# not symmetric, which is always safe. Reading every chain whole would cost
# O(k²) along a chain of k products.
CHAIN = 64


def is_symmetric(x: Expr) -> bool:
    """Whether x = xᵀ follows from its structure (declared symmetric or spd
    variables, identities, inverses, sums and products of symmetric parts,
    A Aᵀ, elementwise functions of symmetric matrices), by each operator's
    `symmetry` in the table."""
    if x.ndim < 2:
        return True
    if isinstance(x, Var):
        return bool(x.structure)
    if not isinstance(x, Apply) or x.shape[0] != x.shape[1]:
        return False
    kind = OPS[x.op].symmetry
    if kind == "always":
        return True
    if kind == "same_args":
        return x.args[0] is x.args[1]
    if kind == "chain":
        factors = _chain(x, CHAIN)
        return factors is not None and _palindrome(factors)
    if kind == "args" and x.op == "add":  # the other terms pair off as transposes
        return _transposed_pairs([a for a in x.args if a.ndim == 1 or not is_symmetric(a)])
    if kind == "args":  # a vector term broadcasts along rows: not symmetric
        return all(a.ndim != 1 and is_symmetric(a) for a in x.args)
    return False


def _transposed_pairs(terms: list) -> bool:
    """Whether the terms of a sum are, as a multiset, their own transposes
    (v[:, None] + v[None, :], c A + c Aᵀ, u vᵀ + v uᵀ): then so is the sum."""
    keys = Counter(map(_oriented, terms))
    return all(keys[(c, base, flipped)] == keys[(c, base, not flipped)]
               for c, base, flipped in keys)


def _oriented(t: Expr) -> tuple:
    """(c, base, flipped) with t = c · base, or c · baseᵀ when flipped: a row
    v[None, :] (or a vector, broadcast along rows) is the column v[:, None]
    flipped, and of u vᵀ and v uᵀ one is the other flipped."""
    c = 1
    if is_op(t, "mul") and len(t.args) == 2 and isinstance(t.args[0], Const):
        c, t = t.args[0].value, t.args[1]
    side, v = _broadcast_vector(t)
    if side is not None:
        return c, ("col", v), side == "row"
    if is_op(t, "outer"):
        u, v = t.args
        return (c, ("outer", u, v), False) if hash(u) <= hash(v) else (c, ("outer", v, u), True)
    if is_op(t, "transpose"):
        return c, t.args[0], True
    return c, t, False


def _chain(x: Expr, limit: int) -> list[tuple[Expr, bool, bool]] | None:
    """x as a product F₁ ⋯ Fₖ of factors (A, transposed, inverted), reading
    (AB)ᵀ as BᵀAᵀ, solve(A, B) as A⁻¹B and inv(A) as A⁻¹, and a name, a
    mark or a scalar multiple of a matrix as the matrix (scalars commute);
    None beyond `limit` factors."""
    factors, stack = [], [(x, False, False)]
    while stack:
        if len(factors) + len(stack) > limit:
            return None
        node, flipped, inverted = stack.pop()
        if inverted:
            factors.append((node, flipped, True))
        elif is_op(node, "transpose"):
            stack.append((node.args[0], not flipped, False))
        elif is_op(node, "inv"):
            stack.append((node.args[0], flipped, True))
        elif (inner := _scaled(node)) is not None:
            stack.append((inner, flipped, False))
        elif (scaled := _row_scaled(node)) is not None:  # v[:, None] ⊙ M = diag(v) M
            parts = [(scaled[0], flipped, False), (scaled[1], flipped, False)]
            stack.extend(parts if flipped else parts[::-1])
        elif is_op(node, "matmul", "solve"):
            a, b = node.args
            parts = [(a, flipped, node.op == "solve"), (b, flipped, False)]
            stack.extend(parts if flipped else parts[::-1])  # popped left to right
        else:
            factors.append((node, flipped, False))
    return factors


def _scaled(x: Expr) -> Expr | None:
    """M for a name or mark of M, c M and M / c with scalars c; else None."""
    if is_op(x, "name", "adjoint"):
        return x.args[0]
    if is_op(x, "mul", "div"):
        matrices = [a for a in x.args if a.ndim]
        if len(matrices) == 1 and (x.op == "mul" or matrices[0] is x.args[0]):
            return matrices[0]
    return None


def _row_scaled(x: Expr) -> tuple | None:
    """(diag(v), M) for v[:, None] ⊙ M, (M, diag(v)) for M ⊙ v[None, :] or
    M ⊙ v, of a matrix M: a diagonal factor of a product chain."""
    if not (is_op(x, "mul") and len(x.args) == 2 and x.ndim == 2):
        return None
    for v, m in (x.args, x.args[::-1]):
        side, vector = _broadcast_vector(v)
        if m.shape == x.shape and side is not None:
            d = apply(OPS["diagm"], (vector,))
            return (d, m) if side == "col" else (m, d)
    return None


def _palindrome(factors: list) -> bool:
    """F₁ ⋯ Fₖ is symmetric when F_{k+1-i} = F_iᵀ and the middle factor is
    symmetric (A B Aᵀ with B = Bᵀ; A Aᵀ)."""
    k = len(factors)
    for i in range(k // 2):
        (a, ta, ia), (b, tb, ib) = factors[i], factors[k - 1 - i]
        if a is not b or ia != ib or (ta == tb and not is_symmetric(a)):
            return False
    return k % 2 == 0 or is_symmetric(factors[k // 2][0])
