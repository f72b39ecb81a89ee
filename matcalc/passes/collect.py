"""Derivative rules that collect what terms share, so it is computed once:
sums along one axis (sum(A, 0) + sum(B, 0) = sum(A + B, 0)), matrix factors
at either end of two products (P A + P B = P (A + B)) and elementwise
factors (F ⊙ A + F ⊙ B = F ⊙ (A + B)). `canonical` leaves them out: it
distributes, they factor."""

from __future__ import annotations

import sympy

from ..ir.expr import Expr, const, is_op
from ..ops import _coefficient, add, matmul, mul, rebuild, reduce_sum, transpose


def _unmark(node: Expr) -> Expr:
    while is_op(node, "name", "adjoint"):
        node = node.args[0]
    return node


def _chain(x: Expr, computed: set) -> list[Expr]:
    """x as a product F₁ ⋯ Fₖ, reading (AB)ᵀ as BᵀAᵀ; values the forward
    pass computes are whole factors."""
    return _scaled_chain(x, computed)[1]


def _scaled_chain(x: Expr, computed: set, marks: bool = False,
                  limit: int | None = None) -> tuple | None:
    """(c, [F₁, …, Fₖ]) with x = c F₁ ⋯ Fₖ as `_chain` reads it, with `marks`
    also through adjoint marks and scalar coefficients (c their product);
    None past `limit` factors."""
    scale, factors, stack = sympy.Integer(1), [], [(x, False)]
    while stack:
        if limit is not None and len(factors) + len(stack) > limit:
            return None
        node, flipped = stack.pop()
        c, rest = _coefficient(node) if marks else (1, None)
        if node is not x and node in computed:
            factors.append(transpose(node) if flipped else node)
        elif marks and is_op(node, "adjoint"):
            stack.append((node.args[0], flipped))
        elif c != 1 and rest is not None and rest.ndim == 2:
            scale *= c
            stack.append((rest, flipped))
        elif is_op(node, "transpose"):
            stack.append((node.args[0], not flipped))
        elif is_op(node, "matmul"):
            parts = [(a, flipped) for a in node.args]
            stack.extend(parts if flipped else parts[::-1])  # popped left to right
        else:
            factors.append(transpose(node) if flipped else node)
    return scale, factors


def sum_of_sums(node: Expr, computed: set) -> Expr | None:
    """sum(A, axis) + sum(B, axis) = sum(A + B, axis) for A, B of one shape:
    one reduction, and A + B is the adjoint a textbook names (dZ in
    db = sum(dZ, 0) next to dW = Xᵀ dZ)."""
    if not is_op(node, "add") or node in computed:
        return None
    groups: dict[tuple, list] = {}
    for t in node.args:
        if is_op(t, "sum"):
            groups.setdefault((t.param("axis"), t.args[0].shape), []).append(t)
    for (axis, _), sums in groups.items():
        if len(sums) > 1:
            rest = (t for t in node.args if not any(t is s for s in sums))
            return add(reduce_sum(add(*(s.args[0] for s in sums)), axis), *rest)
    return None


def _product_of(factors: list) -> Expr:
    result = factors[0]
    for f in factors[1:]:
        result = matmul(result, f)
    return result


def _computed_up_to_scalars(chain: list, computed: set) -> bool:
    """Whether the product of `chain`, its marks dissolved and its scalar
    factors taken out, is a value the forward pass computes (K (λ a / 2) is
    λ/2 K a): a like term of that value, which factoring K out would hide."""
    return _scalars_out(_product_of([_unmark(f) for f in chain])) in computed


def _scalars_out(x: Expr) -> Expr:
    """x with its scalar factors taken out (s ⊙ v is v)."""
    while is_op(x, "mul") and sum(1 for a in x.args if a.shape) == 1:
        x = next(a for a in x.args if a.shape)
    return x


def common_factor(node: Expr, computed: set) -> Expr | None:
    """c P A + d P B = P (c A + d B) and c A Q + d B Q = (c A + d B) Q: a
    matrix factor two terms share is applied once (−S⁻¹AS⁻¹ − S⁻¹AᵀS⁻¹ =
    −S⁻¹(A + Aᵀ)S⁻¹)."""
    if not is_op(node, "add") or node in computed:
        return None
    chains = []
    for t in node.args:
        c, rest = _coefficient(_unmark(t))
        if is_op(rest, "matmul") and rest not in computed:
            chain = _chain(rest, computed)
            if all(m.ndim == 2 for m in chain[1:-1]) and not _computed_up_to_scalars(
                    chain, computed):  # (X u) @ v is a dot, no chain
                chains.append((t, c, chain))
    for end in (0, -1):
        for i, (t, c, f) in enumerate(chains):
            for u, d, g in chains[i + 1:]:
                if f[end] is not g[end]:
                    continue
                sign = -1 if c.could_extract_minus_sign() and d.could_extract_minus_sign() else 1
                inner = add(mul(const(sign * c), _product_of(f[1:] if end == 0 else f[:-1])),
                            mul(const(sign * d), _product_of(g[1:] if end == 0 else g[:-1])))
                pair = matmul(f[0], inner) if end == 0 else matmul(inner, f[-1])
                return add(mul(const(sign), pair),
                           *(a for a in node.args if a is not t and a is not u))
    return None


def _factors(term: Expr) -> tuple:
    """(c, factors) of a term c ⊙ f₁ ⊙ ⋯ ⊙ fₖ (a term that is no product is
    its own one factor)."""
    c, rest = _coefficient(_unmark(term))
    if rest is None:
        return c, []
    return c, list(rest.args) if is_op(rest, "mul") else [rest]


def common_elementwise_factor(node: Expr, computed: set) -> Expr | None:
    """c F ⊙ A + d F ⊙ B = F ⊙ (c A + d B): the factors that most terms of
    a sum share are multiplied once (a Hessian's products of a chain's
    slopes)."""
    if not is_op(node, "add") or node in computed or len(node.args) > 64:
        return None
    parts = [_factors(t) for t in node.args]
    counts: dict = {}
    for _, fs in parts:
        for f in dict.fromkeys(fs):  # in order: the pivot among ties is deterministic
            if not is_op(f, "ones"):
                counts[f] = counts.get(f, 0) + 1
    best = max(counts.values(), default=0)
    if best < 2:
        return None
    pivot = next(f for f, k in counts.items() if k == best)
    group = [i for i, (_, fs) in enumerate(parts) if pivot in fs]
    common = list(parts[group[0]][1])
    for i in group[1:]:
        common = [f for f in common if f in parts[i][1]]
    rests = []
    for i in group:
        c, left = parts[i][0], list(parts[i][1])
        for f in common:
            left.remove(f)
        rests.append(mul(const(c), *left))
    others = (t for i, t in enumerate(node.args) if i not in group)
    return add(mul(*common, add(*rests)), *others)


def _shallow_plain(node: Expr, depth: int = 2) -> Expr:
    """`node` rebuilt with the adjoint marks of its top `depth` levels
    dissolved (so the builders see the constants they hid)."""
    if is_op(node, "adjoint"):
        return _shallow_plain(node.args[0], depth)
    if depth == 0 or not node.args:
        return node
    return rebuild(node, tuple(_shallow_plain(a, depth - 1) for a in node.args))


def marked_like_terms(node: Expr, computed: set) -> Expr | None:
    """c X + S (d X') = (c + d) X where X' is X behind an adjoint mark: like
    terms the mark kept apart (S (r / 2) beside (S r) / 2)."""
    if not is_op(node, "add") or node in computed:
        return None
    seen: dict = {}
    for t in node.args:
        c, rest = _coefficient(_shallow_plain(t))
        if rest is None:
            continue
        if rest in seen:
            u, d = seen[rest]
            others = (a for a in node.args if a is not t and a is not u)
            return add(mul(const(c + d), rest), *others)
        seen[rest] = (t, c)
    return None
