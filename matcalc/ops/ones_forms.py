"""Identities that keep an array of ones symbolic where a derivative makes
one: a broadcast transposed, an outer product with ones, a solve of a
broadcast, a sum of the identity, a sum of an array placed into zeros and
the adjoints of a Kronecker product at an array of ones.
Each returns a broadcast (1 ⊙ v), which the lowering computes as a view of
v, or a reduction of what was placed or scaled, never an array of ones.
Registered after `identities`, so each operator tries these after its own."""

from __future__ import annotations

import sympy

from ..ir.expr import Expr, const, is_op
from .builders import _broadcast_vector, _coefficient, col, func, mul, ones, outer, row
from .axes import reduce_sum
from .indexing import WHOLE
from .rulebook import rule


def broadcast_factors(x: Expr) -> tuple | None:
    """(scalars, rows, columns) of a product 1 ⊙ … of a matrix shape whose
    other factors are scalars and broadcast vectors (v, v[None, :] as rows,
    v[:, None] as columns), each vector as itself, for 1 ⊙ … or a matrix
    of ones; None for anything else."""
    if is_op(x, "ones") and x.ndim == 2:
        return [], [], []
    if not (is_op(x, "mul") and x.ndim == 2 and any(is_op(a, "ones") for a in x.args)):
        return None
    scalars, rows, cols = [], [], []
    for a in x.args:
        if is_op(a, "ones"):
            continue
        kind, v = _broadcast_vector(a) if a.shape else ("scalar", a)
        if kind is None:
            return None
        {"scalar": scalars, "row": rows, "col": cols}[kind].append(v)
    return scalars, rows, cols


@rule("transpose")
def transpose_broadcast(x: Expr) -> Expr | None:
    """(1 ⊙ v[None, :])ᵀ = 1 ⊙ v[:, None]

    and (1 ⊙ v[:, None])ᵀ = 1 ⊙ v[None, :]: a broadcast vector transposed is
    the vector broadcast the other way (a product with it is then a sum)."""
    found = broadcast_factors(x) if is_op(x, "mul") else None
    if found is None:
        return None
    scalars, rows, cols = found
    return mul(ones(x.shape[::-1]), *scalars, *(col(v) for v in rows), *(row(v) for v in cols))


@rule("outer")
def outer_ones(x: Expr, y: Expr) -> Expr | None:
    """1 vᵀ = 1 ⊙ v[None, :]

    and v 1ᵀ = 1 ⊙ v[:, None]: an outer product with ones is a broadcast."""
    shape = (x.shape[0], y.shape[0])
    if is_op(x, "ones"):
        return mul(ones(shape), y)
    if is_op(y, "ones"):
        return mul(ones(shape), col(x))
    return None


@rule("solve")
def solve_broadcast(a: Expr, b: Expr) -> Expr | None:
    """A⁻¹ (u vᵀ) = (A⁻¹ u) vᵀ

    for B = 1 ⊙ u[:, None] ⊙ v[None, :] (u, v or both ones): one solve
    for a vector, its result broadcast."""
    found = broadcast_factors(b)
    if found is None:
        return None
    scalars, rows, cols = found
    x = func("solve", a, mul(*cols) if cols else ones((b.shape[0],)))
    if rows:
        return mul(*scalars, outer(x, mul(*rows)))
    return mul(ones(b.shape), *scalars, col(x))


@rule("sum")
def sum_eye(x: Expr, axis) -> Expr | None:
    """sum(I, 0) = sum(I, 1) = 1

    and sum(I) = n."""
    if not is_op(x, "eye"):
        return None
    return const(x.shape[0]) if axis is None else ones((x.shape[0],))


@rule("sum")
def sum_unindex(x: Expr, axis) -> Expr | None:
    """sum(zeros.at[key].set(G), I) = sum(G, I)

    for a key that selects along the summed axes I only (every axis, or
    slices of the summed axes): the zeros add nothing."""
    if not is_op(x, "unindex"):
        return None
    g, key = x.args[0], x.param("key")
    if axis is None:
        return reduce_sum(g)
    summed = set(axis) if isinstance(axis, tuple) else {axis}
    if all(e == WHOLE or (isinstance(e, tuple) and k in summed) for k, e in enumerate(key)):
        return reduce_sum(g, axis)
    return None


def _unkron_ones(g: Expr, other: Expr) -> Expr | None:
    """c sum(other) 1 for g = c 1 (of the shape g / other), else None."""
    c, rest = _coefficient(g)
    if not is_op(rest, "ones"):
        return None
    shape = tuple(sympy.cancel(n / m) for n, m in zip(g.shape, other.shape))
    return mul(const(c), reduce_sum(other), ones(shape))


@rule("unkron_left")
def unkron_left_ones(g: Expr, b: Expr) -> Expr | None:
    """unkron_left(c 1, B) = c sum(B) 1

    every block of an array of ones meets all of B (the gradient of
    sum(kron(A, B)) by A, never the array of ones of kron's size)."""
    return _unkron_ones(g, b)


@rule("unkron_right")
def unkron_right_ones(g: Expr, a: Expr) -> Expr | None:
    """unkron_right(c 1, A) = c sum(A) 1"""
    return _unkron_ones(g, a)
