"""Where a scale goes in generated code: onto a vector, never onto the
N x K entries of an outer product (c u vᵀ is (c u) vᵀ; (u vᵀ + diag(a)) / s is
(u / s) vᵀ + diag(a / s)), a choice of `lowering`."""

from __future__ import annotations

from ..ir.expr import Const, Expr, apply, is_op
from ..ops import OPS


def scaled_outer(args: tuple) -> Expr | None:
    """c ⊙ u vᵀ for scalars c as (c u) vᵀ: the scale multiplies a vector,
    not the product's N x K entries."""
    outers = [a for a in args if is_op(a, "outer")]
    scalars = [a for a in args if not a.shape]
    if len(outers) != 1 or len(scalars) != len(args) - 1:
        return None
    u, v = outers[0].args
    return apply(OPS["outer"], (apply(OPS["mul"], (*scalars, u)), v))


def divided_outers(args: tuple) -> Expr | None:
    """(u vᵀ + diag(a)) / s for a scalar s as (u / s) vᵀ + diag(a / s)."""
    if args[1].shape:
        return None
    terms = args[0].args if is_op(args[0], "add") else (args[0],)
    divided = [divided_vector(t, args[1]) for t in terms]
    if any(t is None for t in divided):
        return None
    return divided[0] if len(divided) == 1 else apply(OPS["add"], tuple(divided))


def divided_vector(term: Expr, s: Expr) -> Expr | None:
    """c u vᵀ / s as c (u / s) vᵀ, c diag(u) / s as c diag(u / s); None for
    any other term."""
    c, rest = (term.args[0], term.args[1]) if is_op(term, "mul") and len(term.args) == 2 \
        and isinstance(term.args[0], Const) else (None, term)
    if not is_op(rest, "outer", "diagm"):
        return None
    u = apply(OPS["div"], (rest.args[0], s))
    inner = apply(OPS[rest.op], (u, *rest.args[1:]), rest.params)
    return inner if c is None else apply(OPS["mul"], (c, inner))
