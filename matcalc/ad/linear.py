"""The matrix of a linear map given as an expression in a direction.

A Hessian-vector product H v, or a Jacobian-vector product J v, is an
expression linear in the symbol v. For a vector v this module reads off the
matrix M with e = M v; for a matrix V, the Kronecker form K with
vec(e) = K vec(V), vec stacking columns (vec(A V B) = (Bᵀ ⊗ A) vec(V)). Both
are built from the expression's own structure, so they come out in closed
form (Xᵀ diag(s) X, I ⊗ (A + Aᵀ)); where no such form exists the caller keeps
the linear map itself.

Each reading is a table of per-operator rules (as the derivative rules are):
a rule writes a node's matrix from its arguments' matrices. An operator with
no rule in a table has no closed form in that reading.
"""

from __future__ import annotations

import sympy

from ..ir.expr import Apply, Expr, Var, const, is_op, postorder
from ..ops import (LONG, _coefficient, add, col, diag, div, eye, is_zero, kron, matmul, mul,
                  ones, outer, reduce_sum, shared_adjoint, solve, transpose)
from ..ops.functions import cumsum, where
from ..ops.ones_forms import broadcast_factors


class NotLinear(Exception):
    """The expression has no closed-form matrix in this representation."""


def _depends(e: Expr, v: Var, memo: dict) -> bool:
    if e not in memo:
        for node in postorder([e], memo):
            memo[node] = node is v or any(memo[a] for a in node.args)
    return memo[e]


class _Reading:
    """An expression linear in the direction v read as a matrix by `rules`
    (operator -> rule(reading, node)); nodes of more than `ndim` dimensions
    that depend on v have none. A rule reads its arguments' matrices with
    `of` and asks which depend on v with `depends`."""

    def __init__(self, v: Var, rules: dict, what: str, ndim: int):
        self.v, self.rules, self.what, self.ndim = v, rules, what, ndim
        self.memo: dict = {}
        self.done: dict = {}

    def depends(self, e: Expr) -> bool:
        return _depends(e, self.v, self.memo)

    def of(self, x: Expr) -> Expr | None:
        """The matrix of `x` (computed now if not yet done), or its NotLinear."""
        result = self.done[x] if x in self.done else self.rule(x)
        if isinstance(result, NotLinear):
            raise result
        return result

    def rule(self, e: Expr) -> Expr | None:
        """v itself is the identity, a term without v breaks linearity, an
        operator reads by its rule."""
        if e.ndim > self.ndim:
            raise NotLinear("a matrix-valued term depends on the direction")
        if e is self.v:
            return eye(sympy.Mul(*self.v.shape))
        if not self.depends(e):
            raise NotLinear("a term does not depend on the direction (affine, not linear)")
        if not isinstance(e, Apply):
            raise NotLinear(f"unexpected leaf {e!r}")
        if e.op not in self.rules:
            raise NotLinear(f"no {self.what} through '{e.op}'")
        return self.rules[e.op](self, e)

    def read(self, e: Expr) -> Expr | None:
        """The matrix of `e`: the rule at every node that depends on v,
        children first, into `done`: a shared node costs once and no recursion
        runs deep; a node with no closed form keeps its NotLinear, raised only
        where it is asked for. A long sum or product is kept whole (as derive
        does), so a chain grows by nesting, not copying."""
        for node in postorder([e]):
            if self.depends(node):
                try:
                    result = self.rule(node)
                except NotLinear as err:
                    self.done[node] = err
                    continue
                long = isinstance(result, Apply) and len(result.args) > LONG
                self.done[node] = shared_adjoint(result) if long else result
        return self.of(e)


def _through(r: _Reading, e: Apply) -> Expr | None:
    """A name, or a shared adjoint, reads as what it stands for."""
    return r.of(e.args[0])


# ------------------------------------------------ M with e = M v, v a vector ---

def _broadcast_rows(m: Expr, term: Expr, total: Expr) -> Expr:
    """A scalar term's row m broadcast over the rows of a vector sum."""
    if term.ndim == 0 and total.ndim == 1:
        return outer(ones((total.shape[0],)), m)
    return m


def _matrix_add(r: _Reading, e: Apply) -> Expr:
    """M(a + b) = M(a) + M(b), a scalar term's row broadcast over the rows."""
    return add(*(_broadcast_rows(r.of(t), t, e) for t in e.args if r.depends(t)))


def _rows_scaled(a: Expr, t: Expr) -> Expr:
    """diag(a) T = a[:, None] ⊙ T, and a vᵀ where T is a row v broadcast
    (1 vᵀ, v[None, :], or a vector term of a matrix sum)."""
    if t.ndim == 1 or is_op(t, "row"):
        return outer(a, t if t.ndim == 1 else t.args[0])
    c, rest = _coefficient(t)
    if c != 1 and rest is not None:               # diag(a) (c T) = c diag(a) T
        return mul(const(c), _rows_scaled(a, rest))
    if is_op(t, "div") and not t.args[1].shape:   # diag(a) (T / s) = (diag(a) T) / s
        return div(_rows_scaled(a, t.args[0]), t.args[1])
    found = broadcast_factors(t)
    if found is not None and found[1] and not found[2]:
        scalars, rows, _ = found
        return outer(a, mul(*scalars, *rows))
    return mul(col(a), t)


def _matrix_product(r: _Reading, e: Apply) -> Expr:
    """M(a ⊙ u) = diag(a) M(u) (a scalar u: a M(u)ᵀ), a/d = a ⊙ (1/d)."""
    factors = list(e.args)
    if e.op == "div":
        numerator, denominator = e.args
        if r.depends(denominator):
            raise NotLinear("the direction divides")
        factors = [numerator, div(const(1), denominator)]
    dep = [f for f in factors if r.depends(f)]
    if len(dep) != 1:
        raise NotLinear("a product of terms that both depend on the direction")
    u = dep[0]
    rest = [f for f in factors if f is not u]
    a = mul(*rest) if rest else None
    m = r.of(u)
    if a is None:
        return m
    if u.ndim == 0 and e.ndim == 1:   # a vector times a scalar linear in v
        return outer(a, m)
    if a.ndim == 1 and m.ndim == 2:   # diag(a) M, distributed over a sum
        terms = m.args if is_op(m, "add") else (m,)
        return add(*(_rows_scaled(a, t) for t in terms))
    return mul(a, m)


def _matrix_matmul(r: _Reading, e: Apply) -> Expr:
    """M(A u) = A M(u), M(uᵀ B) = Bᵀ M(u); for vectors a·u = M(u)ᵀ a."""
    a, b = e.args
    if r.depends(a) and r.depends(b):
        raise NotLinear("a product of two terms that both depend on the direction")
    if r.depends(b):  # A u, or a·u for a vector a
        m = r.of(b)
        return matmul(a, m) if a.ndim == 2 else matmul(transpose(m), a)
    m = r.of(a)  # uᵀ B = (Bᵀ u)ᵀ, or u·b
    return matmul(transpose(b), m) if b.ndim == 2 else matmul(transpose(m), b)


def _matrix_sum(r: _Reading, e: Apply) -> Expr:
    """M(Σᵢ uᵢ) = Σ over the rows of M(u), for a vector u."""
    if e.args[0].ndim != 1:
        raise NotLinear("no closed-form matrix through 'sum'")
    return reduce_sum(r.of(e.args[0]), 0)


def _matrix_solve(r: _Reading, e: Apply) -> Expr:
    """M(A⁻¹ u) = A⁻¹ M(u) (A⁻¹ itself for u = v)."""
    a, b = e.args
    if r.depends(a):
        raise NotLinear("the direction is inside a solve's matrix")
    return solve(a, r.of(b))


def _matrix_running(r: _Reading, e: Apply) -> Expr:
    """M(cumsum(u)) = cumsum(M(u), axis=0), the lower triangle of ones times
    M(u) (revcumsum: the upper), for a vector u."""
    if e.ndim != 1:
        raise NotLinear(f"no closed-form matrix through '{e.op}' of a matrix")
    return cumsum(r.of(e.args[0]), 0, e.op)


def _matrix_where(r: _Reading, e: Apply) -> Expr:
    """M(where(k, a, b)) = where(k[:, None], M(a), M(b)), a branch without
    the direction being 0, for a vector result."""
    k, *branches = e.args
    if e.ndim != 1 or r.depends(k):
        raise NotLinear("no closed-form matrix through 'where'")
    for b in branches:
        if not r.depends(b) and not is_zero(b):
            raise NotLinear("a branch does not depend on the direction (affine, not linear)")
    ma, mb = (r.of(b) if r.depends(b) else const(0) for b in branches)
    da, db = _diagonal(ma), _diagonal(mb)
    if da is not None and db is not None:  # where(k, diag(a), diag(b)) = diag(where(k, a, b))
        return diag(mul(ones(e.shape), where(k, da, db)))
    return where(col(k) if k.ndim == 1 else k, ma, mb)


def _diagonal(m: Expr) -> Expr | None:
    """d with m = diag(d) (a scalar for c I, 0 for 0), else None."""
    c, rest = _coefficient(m)
    if rest is None and c == 0:
        return const(0)
    if is_op(rest, "eye"):
        return const(c)
    if is_op(rest, "diagm"):
        return mul(const(c), rest.args[0])
    return None


MATRIX_RULES = {"name": _through, "adjoint": _through, "add": _matrix_add,
                "mul": _matrix_product, "div": _matrix_product, "matmul": _matrix_matmul,
                "sum": _matrix_sum, "solve": _matrix_solve, "cumsum": _matrix_running,
                "revcumsum": _matrix_running, "where": _matrix_where}


def matrix_of(e: Expr, v: Var) -> Expr | None:
    """M with e = M v for a vector v: a (len e) x (len v) matrix for a vector
    e, a vector m with e = m·v for a scalar e (None where e is 0)."""
    return _Reading(v, MATRIX_RULES, "closed-form matrix", 1).read(e)


# ----------------------------------- K with vec(e) = K vec(V), V a matrix ---

def _kron_add(r: _Reading, e: Apply) -> Expr:
    """K(A + B) = K(A) + K(B), for terms of the sum's shape."""
    if any(t.shape != e.shape for t in e.args if r.depends(t)):
        raise NotLinear("a broadcast term")
    return add(*(r.of(t) for t in e.args if r.depends(t)))


def _kron_mul(r: _Reading, e: Apply) -> Expr:
    """K(c U) = c K(U) for a scalar c."""
    dep = [f for f in e.args if r.depends(f)]
    rest = [f for f in e.args if not r.depends(f)]
    if len(dep) == 1 and all(f.ndim == 0 for f in rest):
        return mul(*rest, r.of(dep[0]))
    raise NotLinear("an elementwise product with the direction")


def _kron_matmul(r: _Reading, e: Apply) -> Expr:
    """vec(A U) = (I ⊗ A) vec(U), vec(U B) = (Bᵀ ⊗ I) vec(U)."""
    a, b = e.args
    if a.ndim != 2 or b.ndim != 2 or (r.depends(a) and r.depends(b)):
        raise NotLinear("not a product of matrices linear in the direction")
    if r.depends(b):
        return matmul(kron(eye(e.shape[1]), a), r.of(b))
    return matmul(kron(transpose(b), eye(e.shape[0])), r.of(a))


KRON_RULES = {"name": _through, "adjoint": _through, "add": _kron_add, "mul": _kron_mul,
              "matmul": _kron_matmul}


def kron_of(e: Expr, v: Var) -> Expr:
    """K with vec(e) = K vec(v) for a matrix v (columns stacked)."""
    return _Reading(v, KRON_RULES, "Kronecker form", 2).read(e)
