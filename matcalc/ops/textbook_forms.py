"""Identities that give gradients the form a textbook prints: constants
and scalars collected (a / (2 b), (s A) B), σ(−z) = 1 − σ(z), relu ⊙ step
= relu, a weighted sum of rows as Xᵀv. Registered after `identities`, so
each operator tries these last."""

from __future__ import annotations

import sympy

from ..ir.expr import Const, Expr, const, is_const, is_op
from ..ir.shapes import broadcast
from .builders import (_coefficient, add, col, diag, div, eye, func, inv, is_mask, matmul, mul,
                       neg, power, row, term_key, trace, transpose, zeros)
from .axes import _count, expand, expand_dims, reduce_sum
from .core import unnamed
from .functions import where
from .rulebook import rule


def _sigmoid_term(term: Expr) -> tuple | None:
    """(z, a) for a term a ⊙ σ(z) (a = 1 for σ(z) alone), else None."""
    if is_op(term, "sigmoid"):
        return term.args[0], const(1)
    for f in term.args if is_op(term, "mul") else ():
        if is_op(f, "sigmoid"):
            return f.args[0], mul(*(a for a in term.args if a is not f))
    return None


@rule("add")
def add_sigmoid_complement(*terms: Expr) -> Expr | None:
    """a ⊙ σ(z) + b ⊙ σ(−z) = (a − b) ⊙ σ(z) + b

    since σ(−z) = 1 − σ(z) (a binary cross-entropy's σ(z) − y)."""
    found = {}
    for t in terms:
        if (part := _sigmoid_term(t)) is not None:
            found.setdefault(part[0], (t, part[1]))
    for z, (t, a) in found.items():
        if _coefficient(z)[0].could_extract_minus_sign() or neg(z) not in found \
                or found[neg(z)][0] is t:                  # z = −z = 0
            continue
        u, b = found[neg(z)]
        rest = (r for r in terms if r is not t and r is not u)
        return add(mul(add(a, neg(b)), func("sigmoid", z)), b, *rest)
    return None


@rule("add")
def add_scaled_sum(*terms: Expr) -> Expr | None:
    """a + c (b + d) = a + c b + c d

    for a constant c, where a term of the scaled sum is alike one outside
    it, so the two collect (t / 2 − (N / 2 − t / 2) = t − N / 2)."""
    outside = {_like(u) for u in terms}
    for t in terms:
        c, inner = _coefficient(t)
        if is_op(inner, "add") and inner.shape == t.shape \
                and any(_like(v) in outside for v in inner.args):
            others = [u for u in terms if u is not t]
            return add(*others, *(mul(const(c), v) for v in inner.args))
    return None


def _like(term: Expr):
    """What a term is a multiple of (every constant alike)."""
    rest = _coefficient(term)[1]
    return "constant" if rest is None else term_key(rest)


@rule("mul")
def mul_relu_step(*factors: Expr) -> Expr | None:
    """relu(z) ⊙ step(z) = relu(z)

    (the step is 1 wherever relu(z) is not 0)."""
    relus = {unnamed(f).args[0] for f in factors if is_op(unnamed(f), "relu")}
    steps = [f for f in factors if is_op(f, "step") and f.args[0] in relus]
    if not steps:
        return None
    return mul(*(f for f in factors if f is not steps[0]))


@rule("mul")
def mul_reciprocal(*factors: Expr) -> Expr | None:
    """x ⊙ (c / b) = c (x / b)

    (the constant joins the coefficient, the quotient is written as one)."""
    for f in factors:
        if is_op(f, "div") and isinstance(f.args[0], Const):
            others = [a for a in factors if a is not f]
            if any(not isinstance(a, Const) and not is_op(a, "ones") for a in others):
                return mul(f.args[0], div(mul(*others), f.args[1]))
    return None


@rule("div")
def div_coefficient(a: Expr, b: Expr) -> Expr | None:
    """(c a) / (d b) = (c / d) (a / b)

    for constants c, d: the constants join the other constants (c / (d b)
    = (c / d) / b)."""
    ca, ra = _coefficient(a)
    cb, rb = _coefficient(b)
    if rb is None or cb == 1 and (ca == 1 or ra is None):
        return None
    return div(const(ca / cb), rb) if ra is None else mul(const(ca / cb), div(ra, rb))


def _scalar_factors(x: Expr) -> tuple:
    """(s, rest) for x = s ⊙ rest with s the product of x's computed scalar
    factors (a constant stays with rest); (None, x) when there is none."""
    if not is_op(x, "mul"):
        return None, x
    scalars = [a for a in x.args if not a.shape and not isinstance(a, Const)]
    if not scalars or len(scalars) == len(x.args):
        return None, x
    return mul(*scalars), mul(*(a for a in x.args if a.shape or isinstance(a, Const)))


@rule("matmul")
def matmul_scalar(a: Expr, b: Expr) -> Expr | None:
    """(s A) B = s (A B)

    and A (s B) = s (A B) for a computed scalar s: a scale shared by two
    terms is seen as one (λ S x + S (λ x) = 2 λ S x)."""
    sa, ra = _scalar_factors(a)
    sb, rb = _scalar_factors(b)
    if sa is None and sb is None:
        return None
    return mul(sa or const(1), sb or const(1), matmul(ra, rb))


@rule("solve")
def solve_scalar(a: Expr, b: Expr) -> Expr | None:
    """A⁻¹ (s B) = s A⁻¹ B

    and A⁻¹ (B / s) = (A⁻¹ B) / s for a computed scalar s (the solve
    A⁻¹ B is then the one already made)."""
    if is_op(b, "div") and not b.args[1].shape and not isinstance(b.args[1], Const):
        return div(func("solve", a, b.args[0]), b.args[1])
    s, rest = _scalar_factors(b)
    return None if s is None else mul(s, func("solve", a, rest))


@rule("sum")
def sum_weighted_rows(x: Expr, axis: int | None) -> Expr | None:
    """sum(c v[:, None] ⊙ X, 0) = c Xᵀ v

    and sum(c X ⊙ v[None, :], 1) = c X v (v[None, :] or the vector v): a
    weighted sum of rows (or columns) is a matrix-vector product."""
    c, rest = _coefficient(x)
    if axis not in (0, 1) or not is_op(rest, "mul") or len(rest.args) != 2:
        return None
    for v, m in (rest.args, rest.args[::-1]):
        if (is_op(v, "col" if axis == 0 else "row") or (axis == 1 and v.ndim == 1)) \
                and m.ndim == 2 and m.shape == x.shape and not is_op(m, "ones", "eye"):
            w = v if v.ndim == 1 else v.args[0]
            return mul(const(c), matmul(transpose(m), w) if axis == 0 else matmul(m, w))
    return None


@rule("col")
def col_coefficient(v: Expr) -> Expr | None:
    """(c v)[:, None] = c v[:, None]

    and (c / v)[:, None] = c / v[:, None]."""
    if is_op(v, "div") and isinstance(v.args[0], Const) and v.args[0].value != 1:
        return mul(v.args[0], div(const(1), col(v.args[1])))
    c, rest = _coefficient(v)
    return mul(const(c), col(rest)) if c != 1 and rest is not None else None


@rule("row")
def row_coefficient(v: Expr) -> Expr | None:
    """(c v)[None, :] = c v[None, :]"""
    c, rest = _coefficient(v)
    return mul(const(c), row(rest)) if c != 1 and rest is not None else None


@rule("inv")
def inv_inv(x: Expr) -> Expr | None:
    """inv(X⁻¹) = X"""
    return x.args[0] if is_op(x, "inv") else None


@rule("inv")
def inv_transpose(x: Expr) -> Expr | None:
    """inv(Xᵀ) = (X⁻¹)ᵀ

    (one inverse serves both, and a symmetric X's transpose goes)."""
    square = x.ndim == 2 and x.shape[0] == x.shape[1]  # else inv's own error, as written
    return transpose(inv(x.args[0])) if square and is_op(x, "transpose") else None


def _inverse_pair(a: Expr, b: Expr) -> bool:
    """Whether a b = I: X⁻¹ X, X X⁻¹, or their transposes X⁻ᵀ Xᵀ, Xᵀ X⁻ᵀ."""
    if is_op(a, "transpose") and is_op(b, "transpose"):
        a, b = b.args[0], a.args[0]
    return (is_op(a, "inv") and a.args[0] is b) or (is_op(b, "inv") and b.args[0] is a)


@rule("matmul")
def matmul_inverse(a: Expr, b: Expr) -> Expr | None:
    """X⁻¹ X = X X⁻¹ = I

    (and X⁻ᵀ Xᵀ = I)."""
    return eye(a.shape[0]) if a.ndim == 2 and b.ndim == 2 and _inverse_pair(a, b) else None


@rule("div")
def div_cancel(a: Expr, b: Expr) -> Expr | None:
    """(b ⊙ a) / b = a

    (where b ≠ 0, as the quotient needs)."""
    if not is_op(a, "mul") or not any(f is b for f in a.args):
        return None
    rest = list(a.args)
    rest.remove(b)
    result = mul(*rest)
    return result if result.shape == broadcast(a.shape, b.shape) else None


@rule("div")
def div_of_quotient(a: Expr, b: Expr) -> Expr | None:
    """a / (a / c) = c

    (where a ≠ 0, as the quotient needs)."""
    if is_op(b, "div") and b.args[0] is a and b.args[1].shape == broadcast(a.shape, b.shape):
        return b.args[1]
    return None


@rule("sign")
def sign_coefficient(x: Expr) -> Expr | None:
    """sign(c x) = sign(c) sign(x) for a number c ≠ 0"""
    c, rest = _coefficient(x)
    if rest is None or c == 1 or not c.is_number or c == 0:
        return None
    return mul(const(sympy.sign(c)), func("sign", rest))


def _factors(x: Expr) -> list[Expr]:
    return list(x.args) if is_op(x, "mul") else [x]


@rule("mul")
def mul_cancel_quotients(*factors: Expr) -> Expr | None:
    """(a / (b c)) ⊙ b ⊙ (x / d) = (a ⊙ x) / (c d)

    for scalar denominators: the quotients of a product are one quotient,
    and a factor both above and below cancels (where b ≠ 0, as the quotient
    needs)."""
    quotients = [f for f in factors if is_op(f, "div") and not f.args[1].shape]
    top = [g for f in factors for g in (_factors(f.args[0]) if f in quotients else [f])]
    bottom = [g for q in quotients for g in _factors(q.args[1])]
    common = next((g for g in bottom if not isinstance(g, Const) and g in top), None)
    if common is None and len(quotients) < 2:
        return None
    if common is not None:
        top.remove(common)
        bottom.remove(common)
    result = mul(*top) if top else const(1)
    result = div(result, mul(*bottom)) if bottom else result
    return result if result.shape == broadcast(*(f.shape for f in factors)) else None


def _centred(c: Expr, axes: tuple, ndim: int) -> bool:
    """Whether C, of `ndim` axes, is X − mean(X, axes) broadcast back (its
    sums along `axes` are 0), the mean through a name (m = mean(X, axes,
    keepdims=True))."""
    c = unnamed(c)
    if not is_op(c, "add") or len(c.args) != 2 or c.ndim != ndim:
        return False
    for x, t in (c.args, c.args[::-1]):
        k, rest = _coefficient(t)
        inner, rest = _coefficient(unnamed(rest))
        if rest is not None and x.shape == c.shape and k * inner == -1 / _count(x, axes) \
                and any(rest is m for m in _spread_sums(x, axes)):
            return True
    return False


def _spread_sums(x: Expr, axes: tuple) -> tuple:
    """sum(x, axes) put back as it broadcasts against x: a column or row of
    a matrix; an array's with its reduced axes of length 1 (keepdims), or
    without the leading ones."""
    if x.ndim == 2 and len(axes) == 1:
        return ((col if axes[0] == 1 else row)(reduce_sum(x, axes[0])),)
    if x.ndim < 3 or len(axes) == x.ndim:
        return ()
    total = reduce_sum(x, axes)
    return expand_dims(total, axes), expand(total, axes)


def _flat(f: Expr, axes: tuple, ndim: int) -> bool:
    """Whether f, a factor of an array of `ndim` axes, is constant along
    `axes` (a scalar, of length 1 there, or missing them: a vector in a
    matrix broadcasts as a row)."""
    lead = ndim - f.ndim
    return all(a < lead or f.shape[a - lead] == 1 for a in axes)


def _vanishes(term: Expr, axes: tuple, ndim: int) -> bool:
    """Whether term = A ⊙ C (or A ⊙ C / B, with C / B a factor too) with
    A, B constant along `axes` and C centred along them."""
    while is_op(term, "div") and _flat(term.args[1], axes, ndim):
        term = term.args[0]
    factors = term.args if is_op(term, "mul") else (term,)
    rest = [f for f in factors if not _flat(f, axes, ndim)]
    if len(rest) != 1:
        return False
    c = unnamed(rest[0])
    while is_op(c, "div") and _flat(c.args[1], axes, ndim):
        c = unnamed(c.args[0])
    return _centred(c, axes, ndim)


@rule("sum")
def sum_centred(x: Expr, axis) -> Expr | None:
    """sum(a[:, None] ⊙ (X − mean(X, 1)[:, None]), 1) = 0

    and likewise along axis 0, and along the axes I of an array with a of
    length 1 along them (keepdims): a centred array's sums along I are 0,
    so a term a ⊙ C of a sum along I is dropped."""
    axes = (axis,) if isinstance(axis, int) else axis
    if axes is None or x.ndim < 2:
        return None
    while is_op(x, "name", "adjoint"):
        x = x.args[0]
    terms = x.args if is_op(x, "add") else (x,)
    kept = [t for t in terms if not _vanishes(t, axes, x.ndim)]
    if len(kept) == len(terms):
        return None
    if not kept:
        return zeros(tuple(n for k, n in enumerate(x.shape) if k not in axes))
    rest = add(*kept)
    return reduce_sum(rest, axis) if rest.shape == x.shape else None


def _where_with_zero(term: Expr) -> tuple | None:
    """(cond, a, b) of where(cond, a, b) with a or b zero, else None."""
    if is_op(term, "where") and (_is_zero(term.args[1]) or _is_zero(term.args[2])):
        return term.args
    return None


def _is_zero(x: Expr) -> bool:
    return isinstance(x, Const) and x.value == 0


@rule("mul")
def mul_into_where(*factors: Expr) -> Expr | None:
    """h where(k, 0, b) = where(k, 0, h b), and so for where(k, a, 0)

    for a number h, or any h where b is a number (or c 1): a mask. The
    factors move onto the branch that is not 0, so the gradient of
    where(x > 0, log(x), 0) is where(x > 0, 1 / x, 0): 0, not 0 · ∞ = NaN,
    where the branch is not taken. A where the user wrote with an array
    branch keeps NumPy's value (0 · NaN is NaN); in a gradient the
    derivative rule `masked_branch` moves any factor in."""
    masked = [f for f in factors if selecting_mask(f)
              and (is_mask(f) or all(isinstance(g, Const) for g in factors if g is not f))]
    return into_where(masked[0], [f for f in factors if f is not masked[0]]) \
        if masked and len(factors) > 1 else None


def into_where(mask: Expr, rest: list) -> Expr:
    """mask ⊙ rest with the factors in the branch that is not 0."""
    k, a, b = mask.args
    return where(k, a if _is_zero(a) else mul(a, *rest), b if _is_zero(b) else mul(b, *rest))


def divided_where(mask: Expr, h: Expr) -> Expr:
    """mask / h with the divisor in the branch that is not 0."""
    k, a, b = mask.args
    return where(k, a if _is_zero(a) else div(a, h), b if _is_zero(b) else div(b, h))


def selecting_mask(f: Expr) -> bool:
    """Whether f is where(k, a, 0) or where(k, 0, b), and no tie mask."""
    return _where_with_zero(f) is not None and not _ties(f)


def _ties(mask: Expr) -> bool:
    """Whether a mask marks equal entries, 1[x = y] (the ties of max and
    min): it multiplies, so a NaN in x, which ties with nothing, still
    gives a NaN gradient, as in JAX."""
    k = mask.args[0]
    return is_op(k, "compare") and k.param("op") == "=="


@rule("div")
def div_into_where(a: Expr, b: Expr) -> Expr | None:
    """where(k, 0, c) / h = where(k, 0, c / h), and so for where(k, c, 0)

    (c a number or c 1: a mask)."""
    return divided_where(a, b) if is_mask(a) and not _ties(a) else None


@rule("add")
def add_complementary_wheres(*terms: Expr) -> Expr | None:
    """where(k, a, 0) + where(k, 0, b) = where(k, a, b)

    (the two branches of one condition, as a leaky ReLU's gradient), and
    where(k, a, 0) + where(k, c, 0) = where(k, a + c, 0): the terms with one
    condition are one where."""
    by_condition: dict[Expr, list[Expr]] = {}
    for t in terms:
        if _where_with_zero(t) is not None:
            by_condition.setdefault(t.args[0], []).append(t)
    for k, group in by_condition.items():
        if len(group) > 1:
            rest = (r for r in terms if all(r is not t for t in group))
            return add(where(k, add(*(t.args[1] for t in group)),
                             add(*(t.args[2] for t in group))), *rest)
    return None


@rule("sum")
def sum_eye_product(x: Expr, axis) -> Expr | None:
    """sum(I ⊙ X) = tr(X)

    and sum(I ⊙ X, 0) = sum(I ⊙ X, 1) = diag(X) (a trace's derivative by
    the vector of diag(x) A)."""
    if not (is_op(x, "mul") and x.ndim == 2 and axis in (None, 0, 1)):
        return None
    eyes = [a for a in x.args if is_op(a, "eye")]
    if len(eyes) != 1 or eyes[0].shape != x.shape:  # eye(1) broadcast is a matrix of ones
        return None
    other = mul(*(a for a in x.args if a is not eyes[0]))
    if other.shape != x.shape:
        return None
    return trace(other) if axis is None else diag(other)


@rule("pow")
def pow_eye(x: Expr, e: Expr) -> Expr | None:
    """I ** c = I for c > 0"""
    if is_op(x, "eye") and isinstance(e, Const) and e.value.is_positive:
        return x
    return None


@rule("pow")
def pow_quotient_by_root(x: Expr, e: Expr) -> Expr | None:
    """(a / √c)² = a² / c for a number c > 0

    (erf's derivative at x / √2 is then the normal density's exp(−x²/2))."""
    if not (is_const(e, 2) and is_op(x, "div") and is_op(x.args[1], "sqrt")):
        return None
    c = x.args[1].args[0]
    if not (isinstance(c, Const) and c.value.is_number and c.value.is_positive):
        return None
    return div(power(x.args[0], e), c)


@rule("where")
def where_settled(k: Expr, a: Expr, b: Expr) -> Expr | None:
    """where(k, … where(k, x, y) …, … where(k, x, y) …)
    = where(k, … x …, … y …)

    (in a branch the condition is settled: a where of the same condition
    among the branch's terms and their factors is that branch's; a sum
    deeper in is left, as it may be shared)."""
    settled = [_settled(x, k, branch) for branch, x in enumerate((a, b))]
    if settled[0] is a and settled[1] is b:
        return None
    return where(k, *settled)


def _settled(x: Expr, k: Expr, branch: int, top: bool = True) -> Expr:
    """x with each where(k, …) among its terms and their factors taken as
    `branch`."""
    if is_op(x, "where") and x.args[0] is k:
        return x.args[1 + branch]
    if is_op(x, "mul") or (top and is_op(x, "add")):
        args = [_settled(a, k, branch, False) for a in x.args]
        if any(new is not old for new, old in zip(args, x.args)):
            return (add if x.op == "add" else mul)(*args)
    return x
