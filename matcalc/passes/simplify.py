"""Rewrite rules, applied bottom-up until none applies.

Each rule takes a node and returns an equal, simpler node or None (in the
manner of tensorgrad); it also gets the set of nodes the forward pass computes
anyway, which it must not take apart (a transpose of a computed value is a
free view, while pushing it inside would compute the value twice). The
builders in `ops.py` already fold constants, drop zeros and ones and collect
like terms; the rules here move transposes towards the leaves, where they are
free: (AB)ᵀ = BᵀAᵀ, (A + B)ᵀ = Aᵀ + Bᵀ, (A ⊙ B)ᵀ = Aᵀ ⊙ Bᵀ, f(A)ᵀ = f(Aᵀ) for
elementwise f; and they collect common factors that would otherwise be
computed twice: C ⊗ A + C ⊗ B = C ⊗ (A + B), a[:, None] ⊙ X + b[:, None] ⊙ X =
(a + b)[:, None] ⊙ X; and a product chain reuses a product the forward pass
forms (Σ⁻¹RᵀRΣ⁻¹ = (RΣ⁻¹)ᵀ(RΣ⁻¹); those rules live in `products.py`). A
product the forward pass only traces is not formed (tr(A B) is a sum of A ⊙
Bᵀ), so it does not count as computed. Rules by a variable's declared domain
use what its values are: the rows of a `onehot` Y sum to 1, y² = |y| = 1 for
`sign` entries, |x| = x for `positive`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import sympy

from ..ir.expr import Apply, Const, Expr, Var, apply, const, is_op
from ..ops import (OPS, _coefficient, add, col, div, func, kron, matmul, mul, ones, outer,
                   rebuild, reduce_sum, row, transpose)
from ..ops import rulebook
from .broadcast_forms import broadcast_forms
from .divisors import common_divisor, computed_quotient, sum_of_quotient
from .masks import masked_branch
from .products import (computed_product, computed_symmetric_product,
                       distributed_over_computed, formed)
from .row_sums import known_sum
from .collect import (_unmark, common_elementwise_factor, common_factor,
                      marked_like_terms, sum_of_sums)


def _transposed(node: Expr, computed: set, op: str | None = None) -> Apply | None:
    """The argument of `transpose(arg)` when arg applies `op` (any operator
    when None) and is not computed by the forward pass."""
    if is_op(node, "transpose"):
        inner = node.args[0]
        if isinstance(inner, Apply) and inner not in computed and op in (None, inner.op):
            return inner
    return None


def transpose_of_product(node: Expr, computed: set) -> Expr | None:
    """(A B)ᵀ = Bᵀ Aᵀ."""
    inner = _transposed(node, computed, "matmul")
    if inner is None:
        return None
    a, b = inner.args
    return matmul(transpose(b), transpose(a))


def _full_shape(inner: Apply) -> bool:
    """No vector term: scalars and matrices (broadcast rows or columns too)
    transpose term by term."""
    return all(a.ndim in (0, 2) for a in inner.args)


def transpose_of_sum(node: Expr, computed: set) -> Expr | None:
    """(A + B)ᵀ = Aᵀ + Bᵀ, when no term is a vector."""
    inner = _transposed(node, computed, "add")
    if inner is None or not _full_shape(inner):
        return None
    return add(*(transpose(a) for a in inner.args))


def transpose_of_elementwise_product(node: Expr, computed: set) -> Expr | None:
    """(A ⊙ B)ᵀ = Aᵀ ⊙ Bᵀ, when no factor is a vector."""
    inner = _transposed(node, computed, "mul")
    if inner is None or not _full_shape(inner):
        return None
    return mul(*(transpose(a) for a in inner.args))


def transpose_of_elementwise(node: Expr, computed: set) -> Expr | None:
    """f(A)ᵀ = f(Aᵀ) for an elementwise f."""
    inner = _transposed(node, computed)
    if inner is not None and OPS[inner.op].elementwise:
        return func(inner.op, transpose(inner.args[0]))
    return None


def transpose_of_column(node: Expr, computed: set) -> Expr | None:
    """v[:, None]ᵀ = v[None, :] and back."""
    inner = _transposed(node, computed, "col")
    if inner is not None:
        return row(inner.args[0])
    inner = _transposed(node, computed, "row")
    return col(inner.args[0]) if inner is not None else None


def kron_sum(node: Expr, computed: set) -> Expr | None:
    """C ⊗ A + C ⊗ B = C ⊗ (A + B) (and A ⊗ C + B ⊗ C likewise)."""
    if not (is_op(node, "add")) or node in computed:
        return None
    terms = [t for t in node.args if is_op(t, "kron")]
    for i, s in enumerate(terms):
        for t in terms[i + 1:]:
            for k in (0, 1):
                if s.args[k] is t.args[k]:
                    merged = add(s.args[1 - k], t.args[1 - k])
                    pair = (s.args[0], merged) if k == 0 else (merged, s.args[1])
                    rest = [a for a in node.args if a is not s and a is not t]
                    return add(kron(*pair), *rest)
    return None


def _broadcast_term(term: Expr) -> tuple[str, Expr, Expr] | None:
    """(col or row, v, X) for c · v[:, None] ⊙ X (v[None, :] likewise)."""
    if not (is_op(term, "mul")):
        return None
    consts = [a for a in term.args if isinstance(a, Const)]
    rest = [a for a in term.args if not isinstance(a, Const)]
    if len(rest) != 2:
        return None
    for v, x in (rest, rest[::-1]):
        if is_op(v, "col", "row") and x.ndim == 2 \
                and not (is_op(x, "col", "row")):
            return v.op, mul(*consts, v.args[0]), x
    return None


def broadcast_common_factor(node: Expr, computed: set) -> Expr | None:
    """a[:, None] ⊙ X + b[:, None] ⊙ X = (a + b)[:, None] ⊙ X, and likewise
    for rows: the vectors are added, and X is scaled once."""
    if not (is_op(node, "add")) or node in computed:
        return None
    seen: dict[tuple[str, Expr], tuple[Expr, Expr]] = {}
    for term in node.args:
        parts = _broadcast_term(term)
        if parts is None:
            continue
        kind, v, x = parts
        if (kind, x) in seen:
            first, u = seen[(kind, x)]
            merged = mul((col if kind == "col" else row)(add(u, v)), x)
            return add(merged, *(t for t in node.args if t is not first and t is not term))
        seen[(kind, x)] = term, v
    return None


def common_scale(node: Expr, computed: set) -> Expr | None:
    """c A − c B = c (A − B): a scale shared by every term (up to sign) is
    applied once, to the sum (positive terms first)."""
    if not (is_op(node, "add")) or node in computed:
        return None
    parts = [_coefficient(_unmark(t)) for t in node.args]
    if any(rest is None for _, rest in parts):
        return None
    parts.sort(key=lambda p: bool(p[0].could_extract_minus_sign()))
    c = parts[0][0]
    if c == 1 or (c.is_Float and float(c) == 1) or c.could_extract_minus_sign() or \
            any(k != c and k != -c for k, _ in parts):
        return _common_denominator(parts)
    signs = [sympy.Integer(1 if k == c else -1) for k, _ in parts]
    return mul(const(c), add(*(mul(const(sign), rest) for sign, (_, rest) in zip(signs, parts))))


def _common_denominator(parts: list) -> Expr | None:
    """c/q A + d/q B = (c A + d B) / q for an integer q > 1 that divides the
    denominator of every coefficient (N/2 S − (Tᵀ T)/2 = (N S − Tᵀ T)/2)."""
    denominators = [sympy.fraction(k)[1] for k, _ in parts]
    if len(parts) < 2 or not all(d.is_Integer for d in denominators):
        return None
    q = sympy.gcd_list(denominators)
    if q == 1:
        return None
    return mul(const(sympy.Rational(1, q)), add(*(mul(const(k * q), rest) for k, rest in parts)))


def positive_first(node: Expr, computed: set) -> Expr | None:
    """−A + B = B − A: a sum starts with a term of positive sign where it
    has one (the constant term stays first)."""
    if not (is_op(node, "add")) or node in computed:
        return None
    terms = [t for t in node.args if not isinstance(t, Const)]
    negative = [bool(_coefficient(_unmark(t))[0].could_extract_minus_sign()) for t in terms]
    if not negative or not negative[0] or all(negative):
        return None
    order = [t for t, n in zip(terms, negative) if not n] + \
        [t for t, n in zip(terms, negative) if n]
    return add(*(t for t in node.args if isinstance(t, Const)), *order)


# Elementwise functions that are the identity or 1 on a domain: y ** k is 1
# (k even) or y (k odd) for signs; 0 ** k = 0 and 1 ** k = 1 for a onehot Y.
_ON_DOMAIN = {
    "sign": {"abs": "one", "sign": "same", "square": "one"},
    "onehot": {"abs": "same", "sign": "same", "square": "same", "relu": "same", "step": "same"},
    "positive": {"abs": "same", "sign": "one", "relu": "same", "step": "one"},
}


def domain_elementwise(node: Expr, computed: set) -> Expr | None:
    """|y| = y² = 1 and sign(y) = y ** 3 = y for a sign y; f(Y) = Y for a
    onehot Y and f = abs, sign, relu, step, a positive integer power;
    |x| = x and sign(x) = 1 for a positive x."""
    if not isinstance(node, Apply) or not node.args:
        return None
    x = node.args[0]
    if not (isinstance(x, Var) and x.domain):
        return None
    result = _ON_DOMAIN[x.domain].get(node.op)
    if node.op == "pow" and isinstance(node.args[1], Const) and node.args[1].value.is_integer:
        k = node.args[1].value
        if x.domain == "sign":
            result = "one" if k % 2 == 0 else "same"
        elif x.domain == "onehot" and k > 0:
            result = "same"
    if result is None:
        return None
    return x if result == "same" else ones(x.shape)


RULES: list[Callable[[Expr, set], Expr | None]] = [
    transpose_of_product,
    transpose_of_sum,
    transpose_of_elementwise_product,
    transpose_of_elementwise,
    transpose_of_column,
    kron_sum,
    broadcast_common_factor,
    known_sum,
    sum_of_quotient,
    computed_quotient,
    sum_of_sums,
    marked_like_terms,
    distributed_over_computed,
    common_factor,
    common_elementwise_factor,
    common_divisor,
    domain_elementwise,
    common_scale,
    masked_branch,
    positive_first,
    computed_symmetric_product,
    computed_product,
]


class Simplifier:
    """Simplifies many expressions with one memo, so shared nodes stay shared."""

    def __init__(self, computed=(), rules=RULES):
        self.rules = rules
        self.computed = formed(list(computed))
        self.memo: dict[Expr, Expr] = {}

    def __call__(self, root: Expr) -> Expr:
        """Each node rebuilt from its simplified arguments, then rewritten by
        the first rule that applies, and the result simplified in turn: an
        explicit stack, so a rewrite that rebuilds a long chain (a transpose
        pushed through 300 products) is bounded by memory, not by recursion."""
        memo = self.memo
        stack, waiting = [root], {}   # waiting: node -> (its rewrite, its rebuilt form)
        while stack:
            node = stack[-1]
            if node in memo:
                stack.pop()
            elif node in waiting:
                result, new = waiting.pop(node)   # a rewrite that led back to itself keeps `new`
                memo[node] = memo.get(result, new)
                stack.pop()
            elif any(a not in memo for a in node.args):
                stack.extend(a for a in reversed(node.args) if a not in memo)
            else:
                new = rebuild(node, tuple(memo[a] for a in node.args))
                result = self._rewrite(new)
                if result is None or result in memo:
                    memo[node] = new if result is None else memo[result]
                    stack.pop()
                else:
                    waiting[node] = (result, new)
                    stack.append(result)
        return memo[root]

    def _rewrite(self, node: Expr) -> Expr | None:
        """What the first applicable rule makes of `node` (None: none applies)."""
        for rule in self.rules:
            result = rule(node, self.computed)
            if result is not None and result is not node:
                return result
        return None


# ------------------------------------------------------------ canonical ---
# A normal form for comparing expressions, not for printing: products are
# distributed over sums, transposes pushed to the leaves, matrix products
# grouped from the left, vectors multiplied from the left (x @ A = Aᵀ x), and
# terms and factors sorted. Two expressions equal by these laws alike have
# the same canonical node.

def _key(node: Expr) -> str:
    return repr(node)


def sorted_terms(node: Expr, computed: set) -> Expr | None:
    """A + B = B + A and A ⊙ B = B ⊙ A: terms and factors in one order."""
    if is_op(node, "add", "mul"):
        order = sorted(node.args, key=_key)
        if order != list(node.args):
            return (add if node.op == "add" else mul)(*order)
    return None


def _distributes(node: Expr, i: int, t: Expr) -> bool:
    """Whether term t of the sum at argument i of `node` may be taken out:
    ⊙ broadcasts every term; in a matrix product, a broadcast row vector v
    gives (1 vᵀ) C = 1 (vᵀ C) and A (1 vᵀ) = (A 1) vᵀ."""
    a = node.args[i]
    return t.shape == a.shape or node.op == "mul" or (t.ndim == 1 and a.ndim == 2)


def _term_product(node: Expr, i: int, t: Expr) -> Expr:
    """`node` with term t in place of its argument i (a sum)."""
    if node.op == "matmul" and t.ndim == 1 and node.args[i].ndim == 2 and i == 1:
        return outer(reduce_sum(node.args[0], 1), t)
    args = list(node.args)
    args[i] = t
    return (matmul if node.op == "matmul" else mul)(*args)


def distributed(node: Expr, computed: set) -> Expr | None:
    """(A + B) C = A C + B C, and likewise for ⊙ and on the right."""
    if not (is_op(node, "matmul", "mul")):
        return None
    for i, a in enumerate(node.args):
        if is_op(a, "add") and all(_distributes(node, i, t) for t in a.args):
            return add(*(_term_product(node, i, t) for t in a.args))
    return None


def left_grouped(node: Expr, computed: set) -> Expr | None:
    """A (B C) = (A B) C."""
    if is_op(node, "matmul"):
        a, b = node.args
        if is_op(b, "matmul") and a.ndim == 2 and b.args[0].ndim == 2:
            return matmul(matmul(a, b.args[0]), b.args[1])
    return None


def column_vectors(node: Expr, computed: set) -> Expr | None:
    """x @ A = Aᵀ x; outer(a, b)ᵀ = outer(b, a); inv(Xᵀ) = inv(X)ᵀ;
    outer(A b, c) = A outer(b, c) and outer(b, A c) = outer(b, c) Aᵀ."""
    if is_op(node, "outer"):
        a, b = node.args
        if is_op(a, "matmul") and a.args[0].ndim == 2:
            return matmul(a.args[0], apply(OPS["outer"], (a.args[1], b)))
        if is_op(b, "matmul") and b.args[0].ndim == 2:
            return matmul(apply(OPS["outer"], (a, b.args[1])), transpose(b.args[0]))
    if is_op(node, "matmul"):
        a, b = node.args
        if a.ndim == 1 and b.ndim == 2:
            return matmul(transpose(b), a)
    inner = _transposed(node, set(), "outer")
    if inner is not None:
        return apply(OPS["outer"], inner.args[::-1])
    if is_op(node, "inv") and isinstance(node.args[0], Apply) \
            and node.args[0].op == "transpose":
        return transpose(func("inv", node.args[0].args[0]))
    return None


def linear_forms(node: Expr, computed: set) -> Expr | None:
    """A⁻¹ B for solve(A, B); (a + b) / c = a / c + b / c, (a / b) / c = a / (b c),
    A (B / s) = (A B) / s;
    sum(A + B) = sum(A) + sum(B) and sum(c A) = c sum(A) along any axis;
    sum(A B, 0) = sum(A, 0) B and sum(A B, 1) = A sum(B, 1); (c v)[:, None]
    = c v[:, None]."""
    if is_op(node, "solve"):
        return matmul(func("inv", node.args[0]), node.args[1])
    if is_op(node, "div") and is_op(node.args[0], "add"):
        return add(*(div(t, node.args[1]) for t in node.args[0].args))
    if is_op(node, "div") and is_op(node.args[0], "div"):
        return div(node.args[0].args[0], mul(node.args[0].args[1], node.args[1]))
    for i, x in enumerate(node.args if is_op(node, "matmul") else ()):
        if is_op(x, "div") and not x.args[1].shape:
            args = list(node.args)
            args[i] = x.args[0]
            return div(matmul(*args), x.args[1])
    if is_op(node, "col", "row"):
        c, rest = _coefficient(node.args[0])
        return mul(const(c), rebuild(node, (rest,))) if c != 1 and rest is not None else None
    if not is_op(node, "sum"):
        return None
    x, axis = node.args[0], node.param("axis")
    if is_op(x, "add"):   # a broadcast term is summed as broadcast (sum(1 vᵀ, 0) = N v)
        return add(*(reduce_sum(t if t.shape == x.shape else mul(ones(x.shape), t), axis)
                     for t in x.args))
    c, rest = _coefficient(x)
    if c != 1 and rest is not None:
        return mul(const(c), reduce_sum(rest, axis))
    if is_op(x, "matmul") and x.ndim == 2 and axis in (0, 1) and x.args[axis].ndim == 2:
        a, b = x.args
        return matmul(reduce_sum(a, 0), b) if axis == 0 else matmul(a, reduce_sum(b, 1))
    return None


def _unmarked(node: Expr, computed: set) -> Expr | None:
    """Names and adjoint marks are invisible to comparison."""
    if is_op(node, "name", "adjoint"):
        return node.args[0]
    return None


CANONICAL = [_unmarked, *(r for r in RULES if r not in (common_scale, positive_first,
                                                       sum_of_sums, common_factor,
                                                       common_elementwise_factor,
                                                       common_divisor,
                                                       marked_like_terms)),
             column_vectors, linear_forms, broadcast_forms, distributed, left_grouped,
             sorted_terms]


def canonical(expr: Expr, rounds: int = 8) -> Expr:
    """The canonical form of `expr`, for structural comparison: simplified
    again until it stays (a rewrite that leads back to a node still being
    rewritten stops there, and the next round takes it on)."""
    for _ in range(rounds):
        again = Simplifier(rules=CANONICAL)(expr)
        if again is expr:
            break
        expr = again
    return expr


class NamedRule(NamedTuple):
    """A rewrite rule as listed: its name, what it rewrites (an operator as
    it is built, or 'derivative' for a rule of `RULES`) and the identity."""

    name: str
    rewrites: str
    identity: str


def listing() -> list[NamedRule]:
    """Every named rule matcalc applies: the builders' identities, then the
    rules each derivative is simplified by, in the order they are tried."""
    built = [NamedRule(r.name, r.op, r.identity) for r in rulebook.listing()]
    return built + [NamedRule(r.__name__, "derivative", _statement(r)) for r in RULES]


def _statement(rule: Callable) -> str:
    """The first paragraph of a rule's docstring, on one line."""
    return " ".join((rule.__doc__ or "").strip().split("\n\n")[0].split())
