"""Symmetry read from structure: whether x = xᵀ follows from how x is built."""

from __future__ import annotations

from ..ir.expr import Apply, Expr, Var, is_op
from .core import OPS

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
    if kind == "args":  # a vector term broadcasts along rows: not symmetric
        return all(a.ndim != 1 and is_symmetric(a) for a in x.args)
    return False


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


def _palindrome(factors: list) -> bool:
    """F₁ ⋯ Fₖ is symmetric when F_{k+1-i} = F_iᵀ and the middle factor is
    symmetric (A B Aᵀ with B = Bᵀ; A Aᵀ)."""
    k = len(factors)
    for i in range(k // 2):
        (a, ta, ia), (b, tb, ib) = factors[i], factors[k - 1 - i]
        if a is not b or ia != ib or (ta == tb and not is_symmetric(a)):
            return False
    return k % 2 == 0 or is_symmetric(factors[k // 2][0])
