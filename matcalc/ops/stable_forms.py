"""The stable forms, as identities the log and exp builders apply: log(1 +
exp(z)) is softplus(z), not a log of an overflowing exp; log softmax is
z − logsumexp(z); exp(x − logsumexp(x)) is softmax(x). One named rule each,
matched through named intermediates (`_view`)."""

from __future__ import annotations

from ..ir.expr import Expr, is_const
from .builders import _coefficient, add, func, neg, sub
from .axes import expand, logsumexp, softmax
from .core import _view, unnamed
from .identities import _reduction_of
from .rulebook import rule


@rule("log")
def log_exp(x: Expr) -> Expr | None:
    """log(exp(z)) = z"""
    return e.args[0] if (e := _view(x, "exp")) is not None else None


@rule("log")
def log_sigmoid(x: Expr) -> Expr | None:
    """log(σ(z)) = −softplus(−z)"""
    s = _view(x, "sigmoid")
    return neg(func("softplus", neg(s.args[0]))) if s is not None else None


@rule("log")
def log_softmax(x: Expr) -> Expr | None:
    """log(softmax(z)) = z − logsumexp(z)"""
    if (s := _view(x, "softmax")) is None:
        return None
    axis = s.param("axis")
    return sub(s.args[0], expand(logsumexp(s.args[0], axis), axis))


@rule("log")
def log_sum_exp(x: Expr) -> Expr | None:
    """log(sum(exp(z))) = logsumexp(z)"""
    if (s := _view(x, "sum")) is not None and (e := _view(s.args[0], "exp")) is not None:
        return logsumexp(e.args[0], s.param("axis"))
    return None


def _one_plus(x: Expr) -> Expr | None:
    """u where x is 1 + u (through a name), else None."""
    s = _view(x, "add")
    return s.args[1] if s is not None and len(s.args) == 2 and is_const(s.args[0], 1) else None


@rule("log")
def log_one_minus_sigmoid(x: Expr) -> Expr | None:
    """log(1 − σ(z)) = −softplus(z)"""
    if (u := _one_plus(x)) is None:
        return None
    c, rest = _coefficient(unnamed(u))
    if c == -1 and (g := _view(rest, "sigmoid")) is not None:
        return neg(func("softplus", g.args[0]))
    return None


@rule("log")
def log_softplus(x: Expr) -> Expr | None:
    """log(1 + exp(z)) = softplus(z)"""
    u = _one_plus(x)
    e = _view(u, "exp") if u is not None else None
    return func("softplus", e.args[0]) if e is not None else None


@rule("log")
def log_log1p(x: Expr) -> Expr | None:
    """log(1 + u) = log1p(u)"""
    u = _one_plus(x)
    return func("log1p", u) if u is not None else None


@rule("exp")
def exp_log(x: Expr) -> Expr | None:
    """exp(log(z)) = z"""
    return g.args[0] if (g := _view(x, "log")) is not None else None


@rule("exp")
def exp_softmax(x: Expr) -> Expr | None:
    """exp(x − logsumexp(x)) = softmax(x)"""
    if (s := _view(x, "add")) is None:
        return None
    for k, term in enumerate(s.args):
        c, rest = _coefficient(unnamed(term))
        if c != -1 or rest is None:
            continue
        others = s.args[:k] + s.args[k + 1:]
        inner = _reduction_of(rest, "logsumexp", others[0] if len(others) == 1 else add(*others))
        if inner is not None:
            return softmax(inner.args[0], inner.param("axis"))
    return None


@rule("log")
def log_abs_det(x: Expr) -> Expr | None:
    """log |det X| = logdet(X)

    (from one factorisation, never an overflowing det)."""
    a = _view(x, "abs")
    d = _view(a.args[0], "det") if a is not None else None
    return func("logdet", d.args[0]) if d is not None else None
