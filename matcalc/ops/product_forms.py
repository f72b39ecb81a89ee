"""Rules for matrix products with an outer product or a transpose in them:
one form for equal products, and no matrix formed where a vector does.

A u vᵀ is (A u) vᵀ: a matrix-vector product where the product with the
outer product takes a matrix-matrix one (and so for a sum of outer
products); xᵀ Aᵀ is A x; (u vᵀ)ᵀ is v uᵀ and (c X)ᵀ is c Xᵀ, so the like
terms these make are collected.
"""

from __future__ import annotations

from ..ir.expr import Expr, Var, const, is_op
from ..ir.shapes import broadcast
from .axes import reduce_sum
from .builders import _broadcast_vector, _coefficient, add, div, matmul, mul, outer, transpose
from .identities import _scaled_identity
from .rulebook import rule

# The most outer products a sum may have to be distributed over a matrix.
OUTERS = 2


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
    """(Σ c u vᵀ + s I) B = Σ c u (vᵀ B) + s B

    and B (Σ c u vᵀ + s I) = Σ c (B u) vᵀ + s B: a sum of outer
    products (and a scaled identity, as in a projection I − u uᵀ, or a
    diagonal, as in the softmax Jacobian diag(p) − p pᵀ) is never formed to
    be multiplied by a vector, nor by a matrix B when it has at most OUTERS
    terms (k outer products times B cost k N K, the sum first k N M + N M K)."""
    for s, first in ((a, True), (b, False)):
        terms = s.args if is_op(s, "add") else ()
        outers = sum(is_op(_coefficient(t)[1], "outer") for t in terms)
        other = b if first else a
        if outers and all(is_op(_coefficient(t)[1], "outer", "diagm") or
                          _scaled_identity(t)[1] is None for t in terms) \
                and (other.ndim == 1 or outers <= OUTERS):
            return add(*(matmul(t, b) if first else matmul(a, t) for t in terms))
    return None


@rule("add")
def add_outers_sharing_a_vector(*terms: Expr) -> Expr | None:
    """c a xᵀ + d b xᵀ = (c a + d b) xᵀ

    and x aᵀ c + x bᵀ d = x (c a + d b)ᵀ: one outer product, one N x K
    pass, where each term was one."""
    outers = [(t, *_coefficient(t)) for t in terms if is_op(_coefficient(t)[1], "outer")]
    for side in (1, 0):
        shared: dict = {}
        for t, c, o in outers:
            shared.setdefault(o.args[side], []).append((t, c, o.args[1 - side]))
        for x, group in shared.items():
            if len(group) > 1:
                summed = add(*(mul(const(c), v) for _, c, v in group))
                joined = outer(summed, x) if side == 1 else outer(x, summed)
                used = {t for t, _, _ in group}
                return add(joined, *(t for t in terms if t not in used))
    return None


@rule("matmul")
def matmul_dot_with_a_factor(a: Expr, b: Expr) -> Expr | None:
    """(u ⊙ y) · y = sum(u)

    for y ∈ {−1, 1} (declared `sign`: y ⊙ y = 1), so the logistic Hessian by
    a bias is sum(σ ⊙ (1 − σ)), as by the weights it is Xᵀ diag(σ ⊙ (1 − σ)) X."""
    if a.ndim != 1 or b.ndim != 1:
        return None
    for x, y in ((a, b), (b, a)):
        if is_op(x, "mul") and y in x.args and isinstance(y, Var) and y.domain == "sign":
            rest = list(x.args)
            rest.remove(y)
            if any(r.shape == y.shape for r in rest):  # else sum(c) would lose N
                return reduce_sum(mul(*rest))
    return None


@rule("matmul")
def matmul_scaled_vector(a: Expr, b: Expr) -> Expr | None:
    """(diag(r) M diag(k)) v = r ⊙ (M (k ⊙ v))

    and vᵀ (diag(r) M diag(k)) = ((v ⊙ r)ᵀ M) ⊙ k: the broadcast vectors
    scaling a matrix's rows (r[:, None]) and columns (k, k[None, :]) move
    onto the vector, so no scaled copy of M is formed and the product has
    one form however it was written."""
    vector_first = a.ndim == 1
    m, v = (b, a) if vector_first else (a, b)
    if v.ndim != 1 or m.ndim != 2 or not is_op(m, "mul"):
        return None
    parts = _scaled_matrix(m.args)
    if parts is None:
        return None
    scalars, matrix, rows, cols = parts
    inner, outer_ = (rows, cols) if vector_first else (cols, rows)
    product = matmul(mul(v, *inner), matrix) if vector_first else matmul(matrix, mul(v, *inner))
    return mul(*scalars, *outer_, product)


def _scaled_matrix(factors: tuple) -> tuple | None:
    """(scalars, M, row scalings, column scalings) of a product of one
    matrix M with scalars and broadcast vectors, else None."""
    shape = broadcast(*(f.shape for f in factors))
    matrices = [f for f in factors if f.ndim == 2 and not is_op(f, "col", "row")]
    if len(matrices) != 1 or is_op(matrices[0], "ones") or matrices[0].shape != shape:
        return None
    kinds = [_broadcast_vector(f) for f in factors if f.shape and f is not matrices[0]]
    rows = [v for kind, v in kinds if kind == "col"]
    cols = [v for kind, v in kinds if kind == "row"]
    if not rows and not cols:
        return None
    return [f for f in factors if not f.shape], matrices[0], rows, cols


@rule("sum")
def sum_of_product(x: Expr, axis) -> Expr | None:
    """sum(A B) = (1ᵀ A)(B 1)

    and sum(u vᵀ) = sum(u) sum(v), sum(u vᵀ, 0) = sum(u) v, sum(u vᵀ, 1) =
    u sum(v), sum(A x) = (1ᵀ A) x: a product's sum from the sums of its
    factors, the product never formed."""
    if is_op(x, "outer"):
        u, v = x.args
        if axis is None:
            return mul(reduce_sum(u), reduce_sum(v))
        return mul(reduce_sum(u), v) if axis == 0 else mul(u, reduce_sum(v)) if axis == 1 \
            else None
    if not is_op(x, "matmul") or x.ndim > 2:
        return None
    a, b = x.args
    if axis == 0 and x.ndim == 2:                          # 1ᵀ (A B) = (1ᵀ A) B
        return matmul(reduce_sum(a, 0), b)
    if axis == 1 and x.ndim == 2:                          # (A B) 1 = A (B 1)
        return matmul(a, reduce_sum(b, 1))
    left = reduce_sum(a, 0) if a.ndim == 2 else a
    right = reduce_sum(b, 1) if b.ndim == 2 else b
    return matmul(left, right) if axis is None and left.ndim == right.ndim == 1 else None


@rule("sum")
def sum_of_vector_product(x: Expr, axis) -> Expr | None:
    """sum(u ⊙ v) = uᵀ v for vectors u and v"""
    if is_op(x, "mul") and len(x.args) == 2 and x.ndim == 1 and axis in (None, 0) \
            and all(a.shape == x.shape for a in x.args):
        return matmul(*x.args)
    return None


@rule("mul")
def mul_column_row(*factors: Expr) -> Expr | None:
    """c u[:, None] ⊙ v[None, :] = c u vᵀ"""
    cols = [f for f in factors if is_op(f, "col")]
    rows = [f for f in factors if is_op(f, "row")]
    scales = [f for f in factors if not f.shape]
    if len(cols) == len(rows) == 1 and len(scales) == len(factors) - 2:
        return mul(*scales, outer(cols[0].args[0], rows[0].args[0]))
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
