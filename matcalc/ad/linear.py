"""The matrix of a linear map given as an expression in a direction.

A Hessian-vector product H v, or a Jacobian-vector product J v, is an
expression linear in the symbol v. For a vector v this module reads off the
matrix M with e = M v; for a matrix V, the Kronecker form K with
vec(e) = K vec(V), vec stacking columns (vec(A V B) = (Bᵀ ⊗ A) vec(V)). Both
are built from the expression's own structure, so they come out in closed
form (Xᵀ diag(s) X, I ⊗ (A + Aᵀ)); where no such form exists the caller keeps
the linear map itself.
"""

from __future__ import annotations

import sympy

from ..ir.expr import Apply, Expr, Var, const, postorder
from ..ops import (LONG, add, col, div, eye, kron, matmul, mul, ones, outer, reduce_sum,
                  shared_adjoint, transpose)


class NotLinear(Exception):
    """The expression has no closed-form matrix in this representation."""


def _depends(e: Expr, v: Var, memo: dict) -> bool:
    if e not in memo:
        for node in postorder([e], memo):
            memo[node] = node is v or any(memo[a] for a in node.args)
    return memo[e]


def _shared_cases(e: Expr, v: Var, memo: dict, of) -> Expr | None:
    """What both readings do alike: v itself is the identity, a name is what
    it stands for, a term without v breaks linearity."""
    if e is v:
        return eye(sympy.Mul(*v.shape))
    if not _depends(e, v, memo):
        raise NotLinear("a term does not depend on the direction (affine, not linear)")
    if not isinstance(e, Apply):
        raise NotLinear(f"unexpected leaf {e!r}")
    if e.op in ("name", "adjoint"):
        return of(e.args[0])
    return None


def _lookup(done: dict, x: Expr, rule) -> Expr | None:
    """The result for `x` (computed now if not yet done), or its NotLinear."""
    result = done[x] if x in done else rule(x)
    if isinstance(result, NotLinear):
        raise result
    return result


def _children_first(e: Expr, v: Var, memo: dict, rule, done: dict) -> None:
    """`rule` at every node of `e` that depends on v, children first, into
    `done`: a shared node costs once and no recursion runs deep (a rule reads
    its arguments' results from `done`); a node with no closed form keeps its
    NotLinear, raised only where it is asked for. A long sum or product is
    kept whole (as derive does), so a chain grows by nesting, not copying."""
    for node in postorder([e]):
        if _depends(node, v, memo):
            try:
                result = rule(node)
            except NotLinear as err:
                done[node] = err
                continue
            long = isinstance(result, Apply) and len(result.args) > LONG
            done[node] = shared_adjoint(result) if long else result


def matrix_of(e: Expr, v: Var) -> Expr | None:
    """M with e = M v for a vector v: a (len e) x (len v) matrix for a vector
    e, a vector m with e = m·v for a scalar e (None where e is 0)."""
    memo: dict = {}
    done: dict = {}

    def of(x: Expr) -> Expr | None:
        return _lookup(done, x, rule)

    def rule(e: Expr) -> Expr | None:
        if e.ndim == 2:
            raise NotLinear("a matrix-valued term depends on the direction")
        shared = _shared_cases(e, v, memo, of)
        if shared is not None:
            return shared
        if e.op == "add":
            parts = [_broadcast_rows(of(t), t, e) for t in e.args if _depends(t, v, memo)]
            return add(*parts)
        if e.op in ("mul", "div"):
            return _product(e)
        if e.op == "matmul":
            a, b = e.args
            if _depends(a, v, memo) and _depends(b, v, memo):
                raise NotLinear("a product of two terms that both depend on the direction")
            if _depends(b, v, memo):  # A u, or a·u for a vector a
                m = of(b)
                return matmul(a, m) if a.ndim == 2 else matmul(transpose(m), a)
            m = of(a)  # uᵀ B = (Bᵀ u)ᵀ, or u·b
            return matmul(transpose(b), m) if b.ndim == 2 else matmul(transpose(m), b)
        if e.op == "sum" and e.args[0].ndim == 1:
            return reduce_sum(of(e.args[0]), 0)
        raise NotLinear(f"no closed-form matrix through '{e.op}'")

    def _product(e: Apply) -> Expr:
        factors = list(e.args)
        if e.op == "div":
            numerator, denominator = e.args
            if _depends(denominator, v, memo):
                raise NotLinear("the direction divides")
            factors = [numerator, div(const(1), denominator)]
        dep = [f for f in factors if _depends(f, v, memo)]
        if len(dep) != 1:
            raise NotLinear("a product of terms that both depend on the direction")
        u = dep[0]
        rest = [f for f in factors if f is not u]
        a = mul(*rest) if rest else None
        m = of(u)
        if a is None:
            return m
        if u.ndim == 0 and e.ndim == 1:   # a vector times a scalar linear in v
            return outer(a, m)
        if a.ndim == 1 and m.ndim == 2:   # diag(a) M, distributed over a sum
            terms = m.args if isinstance(m, Apply) and m.op == "add" else (m,)
            return add(*(mul(col(a), t) for t in terms))
        return mul(a, m)

    _children_first(e, v, memo, rule, done)
    return of(e)


def _broadcast_rows(m: Expr, term: Expr, total: Expr) -> Expr:
    """A scalar term's row m broadcast over the rows of a vector sum."""
    if term.ndim == 0 and total.ndim == 1:
        return outer(ones((total.shape[0],)), m)
    return m


def kron_of(e: Expr, v: Var) -> Expr:
    """K with vec(e) = K vec(v) for a matrix v (columns stacked)."""
    memo: dict = {}
    n, k = v.shape
    done: dict = {}

    def of(x: Expr) -> Expr:
        return _lookup(done, x, rule)

    def rule(e: Expr) -> Expr:
        shared = _shared_cases(e, v, memo, of)
        if shared is not None:
            return shared
        if e.op == "add":
            if any(t.shape != e.shape for t in e.args if _depends(t, v, memo)):
                raise NotLinear("a broadcast term")
            return add(*(of(t) for t in e.args if _depends(t, v, memo)))
        if e.op == "mul":
            dep = [f for f in e.args if _depends(f, v, memo)]
            rest = [f for f in e.args if not _depends(f, v, memo)]
            if len(dep) == 1 and all(f.ndim == 0 for f in rest):
                return mul(*rest, of(dep[0]))
            raise NotLinear("an elementwise product with the direction")
        if e.op == "matmul":
            a, b = e.args
            if a.ndim != 2 or b.ndim != 2 or (_depends(a, v, memo) and _depends(b, v, memo)):
                raise NotLinear("not a product of matrices linear in the direction")
            if _depends(b, v, memo):  # vec(A U) = (I ⊗ A) vec(U)
                return matmul(kron(eye(e.shape[1]), a), of(b))
            return matmul(kron(transpose(b), eye(e.shape[0])), of(a))  # (Bᵀ ⊗ I)
        raise NotLinear(f"no Kronecker form through '{e.op}'")

    _children_first(e, v, memo, rule, done)
    return of(e)
