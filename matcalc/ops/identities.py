"""The identities the builders apply, one named rule each.

Every rule gets the operands a builder is about to combine (after
flattening, constant folding and like terms) and returns an equal node or
None; `rulebook.first(op, ...)` tries the rules of `op` in the order below.
The stable forms of log and exp are in `stable_forms`. Rules match through
named intermediates (`_view`).
"""

from __future__ import annotations

import sympy

from ..ir.expr import Const, Expr, const, is_const, is_op, rewrite
from ..ir.shapes import Shape, broadcast
from .builders import (_broadcast_vector, _coefficient, add, col, div, exp, eye, func, inv,
                       kron, matmul, mul, neg, ones, outer, rebuild, row, trace)
from .axes import reduce_sum, softmax, spread
from .core import _view, unnamed
from .rulebook import rule
from .shape_rules import _matmul_shape
from .symmetry import is_symmetric


# ------------------------------------------------------------ add, mul ---

@rule("add")
def add_expm1(*terms: Expr) -> Expr | None:
    """1 + expm1(x) = exp(x)"""
    if len(terms) == 2 and is_const(terms[0], 1) and (m := _view(terms[1], "expm1")) is not None:
        return exp(m.args[0])
    return None


@rule("add")
def add_exp_minus_one(*terms: Expr) -> Expr | None:
    """exp(x) − 1 = expm1(x)

    without the cancellation near x = 0."""
    if len(terms) == 2 and is_const(terms[0], -1) and (e := _view(terms[1], "exp")) is not None:
        return func("expm1", e.args[0])
    return None


def _product(factors: tuple) -> tuple[sympy.Expr, list[Expr], Shape]:
    """(c, kept, shape) of a product: its coefficient, the factors other
    than the coefficient and broadcast ones, and its shape."""
    c = factors[0].value if isinstance(factors[0], Const) else sympy.Integer(1)
    kept = [f for f in factors if not isinstance(f, Const) and not is_op(f, "ones")]
    return c, kept, broadcast(*(f.shape for f in factors))


@rule("mul")
def mul_column_outer(*factors: Expr) -> Expr | None:
    """a[:, None] ⊙ (b dᵀ) = (a ⊙ b) dᵀ"""
    if len(factors) > 4:
        return None
    c, kept, shape = _product(factors)
    if len(kept) != 2:
        return None
    column, other = kept if is_op(kept[0], "col") else kept[::-1]
    if is_op(column, "col") and is_op(other, "outer"):
        b, d = other.args
        return mul(const(c), ones(shape), outer(mul(column.args[0], b), d))
    return None


# ------------------------------------------------------------------ div ---

@rule("div")
def div_broadcast_ones(a: Expr, b: Expr) -> Expr | None:
    """(c 1) / b = 1 ⊙ (c / b)

    for all ones of a shape b broadcasts to: the quotient has b's shape,
    and is broadcast, never divided into an array of ones."""
    c, rest = _coefficient(a)
    if not is_op(rest, "ones") or b.shape == a.shape or broadcast(a.shape, b.shape) != a.shape:
        return None
    return mul(ones(a.shape), div(const(c), b))


def _alike(a: Expr, b: Expr) -> bool:
    """Whether `a` and `b` are one value once every name is seen through."""
    if unnamed(a) is unnamed(b):
        return True
    plain = rewrite([a, b], lambda n, args: args[0] if is_op(n, "name") else rebuild(n, args))
    return plain[0] is plain[1]


def _reduction_of(b: Expr, op: str, x: Expr) -> Expr | None:
    """The reduction `op(x, axis)` that `b` repeats along its own axis, or
    None (a reduction over axis 1 written without [:, None] lines up with
    the columns, not the rows: not a match)."""
    r, axis = spread(unnamed(b))
    r = _view(r, op)
    if r is not None and _alike(r.args[0], x) \
            and r.param("axis") == (axis if x.ndim == 2 else None):
        return r
    return None


@rule("div")
def div_softmax(a: Expr, b: Expr) -> Expr | None:
    """exp(x) / sum(exp(x), axis) = softmax(x, axis)"""
    if (e := _view(a, "exp")) is not None:
        total = _reduction_of(b, "sum", a)
        if total is not None:
            return softmax(e.args[0], total.param("axis"))
    return None


@rule("div")
def div_sigmoid(a: Expr, b: Expr) -> Expr | None:
    """1 / (1 + exp(−z)) = σ(z)"""
    s = _view(b, "add")
    if is_const(a, 1) and s is not None and len(s.args) == 2 and is_const(s.args[0], 1) \
            and (e := _view(s.args[1], "exp")) is not None:
        return func("sigmoid", neg(e.args[0]))
    return None


# --------------------------------------------------------------- matmul ---

@rule("matmul")
def matmul_symmetric_first(a: Expr, b: Expr) -> Expr | None:
    """xᵀ S = S x for a symmetric S

    (one form for both)."""
    if a.ndim == 1 and b.ndim == 2 and is_symmetric(b):
        return matmul(b, a)
    return None


@rule("matmul")
def matmul_diag_left(a: Expr, b: Expr) -> Expr | None:
    """diag(v) X = v[:, None] ⊙ X

    and diag(v) x = v ⊙ x."""
    if is_op(a, "diagm"):
        return mul(col(a.args[0]) if b.ndim == 2 else a.args[0], b)
    return None


@rule("matmul")
def matmul_diag_right(a: Expr, b: Expr) -> Expr | None:
    """X diag(v) = X ⊙ v[None, :]"""
    if is_op(b, "diagm") and a.ndim == 2:
        return mul(a, b.args[0])
    return None


@rule("matmul")
def matmul_broadcast(a: Expr, b: Expr) -> Expr | None:
    """A (1 vᵀ) = (A 1) vᵀ

    and (v 1ᵀ) B = v (1ᵀ B), A (v 1ᵀ) = (A v) 1ᵀ, (1 vᵀ) B = 1 (vᵀ B): a
    product with a broadcast vector, never formed; for a vector x,
    x (1 vᵀ) = (xᵀ 1) v and xᵀ (v 1ᵀ) = (xᵀ v) 1ᵀ."""
    shape = _matmul_shape([a.shape, b.shape], {})
    for m, other, first in ((b, a, False), (a, b, True)):
        if not (is_op(m, "mul") and len(m.args) == 2 and is_op(m.args[0], "ones") and m.ndim == 2):
            continue
        kind, v = _broadcast_vector(m.args[1])
        if kind is None:
            continue
        if kind == ("col" if first else "row"):             # the sums of `other`
            if other.ndim == 1:
                return mul(reduce_sum(other), v)
            return outer(v, reduce_sum(other, 0)) if first else outer(reduce_sum(other, 1), v)
        inner = matmul(v, other) if first else matmul(other, v)
        return mul(ones(shape), inner if other.ndim == 1 else row(inner) if first else col(inner))
    return None


@rule("matmul")
def matmul_ones_left(a: Expr, b: Expr) -> Expr | None:
    """1ᵀ B = sum(B, 0)

    the column sums (broadcast when 1 is a matrix)."""
    if not is_op(a, "ones"):
        return None
    shape = _matmul_shape([a.shape, b.shape], {})
    sums = reduce_sum(b, 0 if b.ndim == 2 else None)
    return sums if a.ndim == 1 else mul(ones(shape), row(sums) if b.ndim == 2 else sums)


@rule("matmul")
def matmul_ones_right(a: Expr, b: Expr) -> Expr | None:
    """A 1 = sum(A, 1)

    the row sums (broadcast when 1 is a matrix)."""
    if not is_op(b, "ones"):
        return None
    shape = _matmul_shape([a.shape, b.shape], {})
    sums = reduce_sum(a, 1 if a.ndim == 2 else None)
    return sums if b.ndim == 1 else mul(ones(shape), col(sums) if a.ndim == 2 else sums)


@rule("matmul")
def matmul_kron(a: Expr, b: Expr) -> Expr | None:
    """kron(A, B) kron(C, D) = kron(A C, B D)"""
    if is_op(a, "kron") and is_op(b, "kron"):
        (p, q), (r, s) = a.args, b.args
        if p.shape[1] == r.shape[0] and q.shape[1] == s.shape[0]:
            return kron(matmul(p, r), matmul(q, s))
    return None


@rule("matmul")
def matmul_coefficient(a: Expr, b: Expr) -> Expr | None:
    """(c A) B = c (A B)

    and A (d B) = d (A B)."""
    ca, ra = _coefficient(a)
    cb, rb = _coefficient(b)
    if (ca != 1 or cb != 1) and ra is not None and rb is not None:
        return mul(const(ca * cb), matmul(ra, rb))
    return None


def _scaled_identity(x: Expr) -> tuple:
    """(s, None) for s * eye(n) with s a scalar (a constant or a computed
    scalar, so A (s I) = s A is never a product with a dense identity);
    (None, x) for anything else."""
    if is_op(x, "eye"):
        return const(1), None
    if is_op(x, "mul") and sum(is_op(a, "eye") for a in x.args) == 1 and \
            all(is_op(a, "eye") or not a.shape for a in x.args):
        return mul(*(a for a in x.args if not is_op(a, "eye"))), None
    if is_op(x, "div") and not x.args[1].shape and (s := _scaled_identity(x.args[0])[0]) is not None:
        return div(s, x.args[1]), None                      # (s I) / d = (s / d) I
    return None, x


@rule("matmul")
def matmul_scaled_identity(a: Expr, b: Expr) -> Expr | None:
    """A (s I) = s A

    and (s I) B = s B for a scalar s (a constant or a computed scalar)."""
    scale_a, ra = _scaled_identity(a)
    scale_b, rb = _scaled_identity(b)
    if scale_a is None and scale_b is None:
        return None
    scale = mul(scale_a or const(1), scale_b or const(1))
    if ra is None and rb is None:
        return mul(scale, eye(a.shape[0]))
    return mul(scale, rb if ra is None else ra if rb is None else matmul(ra, rb))


@rule("transpose")
def transpose_symmetric(x: Expr) -> Expr | None:
    """Sᵀ = S for a symmetric S"""
    return x if is_symmetric(x) else None


@rule("transpose")
def transpose_transpose(x: Expr) -> Expr | None:
    """(Xᵀ)ᵀ = X"""
    return x.args[0] if is_op(x, "transpose") else None


# ------------------------------------------------------------------ sum ---

@rule("sum")
def sum_broadcast_vector(x: Expr, axis: int | None) -> Expr | None:
    """sum(c v[:, None], 1) = c v

    and sum(c v[None, :], 0) = c v."""
    c, rest = _coefficient(x)
    if (is_op(rest, "col") and axis == 1) or (is_op(rest, "row") and axis == 0):
        return mul(const(c), rest.args[0])
    return None


@rule("sum")
def sum_of_broadcast(x: Expr, axis: int | None) -> Expr | None:
    """sum(1 ⊙ v, 0) = N v for v the same in every row

    (a vector, v[None, :] or a scalar; likewise v[:, None] over axis 1): the
    sum of N equal rows, never formed."""
    if axis is None or isinstance(axis, tuple) or not is_op(x, "mul") \
            or not any(is_op(a, "ones") for a in x.args):
        return None
    kept = []
    for a in x.args:
        if is_op(a, "ones"):
            continue
        if not a.shape or (axis == 0 and a.ndim == 1):
            kept.append(a)
        elif is_op(a, "row" if axis == 0 else "col"):
            kept.append(a.args[0])
        else:
            return None
    if not any(k.shape for k in kept):
        return None  # c 1 sums to c · count 1 as it is built
    return mul(const(x.shape[axis]), *kept)


@rule("sum")
def sum_diagm(x: Expr, axis: int | None) -> Expr | None:
    """sum(diag(v), axis) = v"""
    return x.args[0] if is_op(x, "diagm") and axis is not None else None


@rule("sum")
def sum_diag_trace(x: Expr, axis: int | None) -> Expr | None:
    """sum(diag(X)) = tr(X)"""
    return func("trace", x.args[0]) if is_op(x, "diag") and axis is None else None


@rule("sum")
def sum_coefficient(x: Expr, axis: int | None) -> Expr | None:
    """sum(c X) = c sum(X)

    over everything, the axes of a tuple, or an axis of a column or row V."""
    c, rest = _coefficient(x)
    if c != 1 and rest is not None and (axis is None or isinstance(axis, tuple)
                                        or is_op(rest, "col", "row")):
        return mul(const(c), reduce_sum(rest, axis))
    return None


@rule("sum")
def sum_transpose(x: Expr, axis: int | None) -> Expr | None:
    """sum(Xᵀ, 0) = sum(X, 1)

    and sum(Xᵀ, 1) = sum(X, 0)."""
    return reduce_sum(x.args[0], 1 - axis) if is_op(x, "transpose") and axis in (0, 1) \
        else None


@rule("sum")
def sum_of_sum(x: Expr, axis) -> Expr | None:
    """sum(sum(X, a)) = sum(X)

    the total of partial sums is the total."""
    return reduce_sum(x.args[0]) if is_op(x, "sum") and axis is None else None


# ----------------------------------------------------------------- diag ---

@rule("diagm")
def diagm_ones(v: Expr) -> Expr | None:
    """diag(c 1) = c I"""
    c, rest = _coefficient(v)
    return mul(const(c), eye(v.shape[0])) if is_op(rest, "ones") else None


@rule("diag")
def diag_diagm(x: Expr) -> Expr | None:
    """diag(diag(v)) = v"""
    return x.args[0] if is_op(x, "diagm") else None


@rule("diag")
def diag_outer(x: Expr) -> Expr | None:
    """diag(a bᵀ) = a ⊙ b"""
    return mul(*x.args) if is_op(x, "outer") else None


@rule("diag")
def diag_eye_ones(x: Expr) -> Expr | None:
    """diag(I) = diag(1 1ᵀ) = 1"""
    return ones((x.shape[0],)) if is_op(x, "eye", "ones") else None


# ------------------------------------------------ kron, solve and views ---

@rule("kron")
def kron_eye(a: Expr, b: Expr) -> Expr | None:
    """kron(I, I) = I"""
    return eye(a.shape[0] * b.shape[0]) if is_op(a, "eye") and is_op(b, "eye") else None


@rule("kron")
def kron_coefficient(a: Expr, b: Expr) -> Expr | None:
    """kron(c A, d B) = c d kron(A, B)"""
    ca, ra = _coefficient(a)
    cb, rb = _coefficient(b)
    if (ca != 1 or cb != 1) and ra is not None and rb is not None:
        return mul(const(ca * cb), kron(ra, rb))
    return None


@rule("trace")
def trace_of_sum(x: Expr) -> Expr | None:
    """tr(A + B) = tr(A) + tr(B)

    and tr(s A) = s tr(A) for a number or computed scalar s: no sum or
    scaled copy of a matrix formed for its diagonal."""
    if is_op(x, "add") and all(t.shape == x.shape for t in x.args):
        return add(*(trace(t) for t in x.args))
    scalars = [a for a in x.args if not a.shape] if is_op(x, "mul") else []
    if not scalars or len(scalars) == len(x.args):
        return None
    return mul(*scalars, trace(mul(*(a for a in x.args if a.shape))))


@rule("trace")
def trace_outer(x: Expr) -> Expr | None:
    """tr(a bᵀ) = aᵀ b"""
    return matmul(*x.args) if is_op(x, "outer") else None


@rule("trace")
def trace_kron(x: Expr) -> Expr | None:
    """tr(A ⊗ B) = tr(A) tr(B) for square A and B"""
    if is_op(x, "kron") and all(a.shape[0] == a.shape[1] for a in x.args):
        return mul(trace(x.args[0]), trace(x.args[1]))
    return None


@rule("unkron_left")
def unkron_left_eye(g: Expr, b: Expr) -> Expr | None:
    """unkron_left(I, B) = tr(B) I"""
    if is_op(g, "eye") and b.shape[0] == b.shape[1]:
        return mul(func("trace", b), eye(sympy.cancel(g.shape[0] / b.shape[0])))
    return None


@rule("unkron_right")
def unkron_right_eye(g: Expr, a: Expr) -> Expr | None:
    """unkron_right(I, A) = tr(A) I"""
    if is_op(g, "eye") and a.shape[0] == a.shape[1]:
        return mul(func("trace", a), eye(sympy.cancel(g.shape[0] / a.shape[0])))
    return None


@rule("solve")
def solve_scaled_identity(a: Expr, b: Expr) -> Expr | None:
    """A⁻¹ (s I) = s A⁻¹"""
    scale, rest = _scaled_identity(b)
    return mul(scale, inv(a)) if rest is None else None


@rule("solve")
def solve_coefficient(a: Expr, b: Expr) -> Expr | None:
    """A⁻¹ (c B) = c A⁻¹ B"""
    scale, rest = _coefficient(b)
    if scale != 1 and rest is not None:
        return mul(const(scale), func("solve", a, rest))
    return None


@rule("col")
def col_ones(v: Expr) -> Expr | None:
    """(c 1)[:, None] = c 1"""
    c, rest = _coefficient(v)
    return mul(const(c), ones((v.shape[0], sympy.Integer(1)))) if is_op(rest, "ones") else None


@rule("row")
def row_ones(v: Expr) -> Expr | None:
    """(c 1)[None, :] = c 1"""
    c, rest = _coefficient(v)
    return mul(const(c), ones((sympy.Integer(1), v.shape[0]))) if is_op(rest, "ones") else None


@rule("outer")
def outer_coefficient(x: Expr, y: Expr) -> Expr | None:
    """(c x)(d y)ᵀ = c d x yᵀ

    for numbers or computed scalars c and d."""
    (c, rx), (d, ry) = _scalars(x), _scalars(y)
    if (c is not None or d is not None) and rx is not None and ry is not None:
        return mul(*(s for s in (c, d) if s is not None), outer(rx, ry))
    return None


def _scalars(x: Expr) -> tuple:
    """(s, v) for a vector s ⊙ v with s its scalar factors, or v / s as
    (1 / s) ⊙ v (None if none)."""
    if is_op(x, "div") and not x.args[1].shape and x.args[0].ndim == 1:
        return div(const(1), x.args[1]), x.args[0]
    if not is_op(x, "mul"):
        return None, x
    scalars = [a for a in x.args if not a.shape]
    vectors = [a for a in x.args if a.shape]
    if not scalars or len(vectors) != 1:
        return None, x
    return mul(*scalars), vectors[0]
