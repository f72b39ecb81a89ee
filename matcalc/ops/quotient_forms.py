"""Rules for repeated divisors: one power where a textbook writes one."""

from __future__ import annotations

from ..ir.expr import Const, Expr, const, is_op
from .builders import _coefficient, div, mul, power
from .rulebook import rule


def _base_power(x: Expr) -> tuple:
    """(b, p) for x = b ** p with a number p (p = 1 for any other x)."""
    if is_op(x, "pow") and isinstance(x.args[1], Const) and x.args[1].value.is_number:
        return x.args[0], x.args[1].value
    return x, 1


@rule("div")
def div_repeated_divisor(a: Expr, b: Expr) -> Expr | None:
    """(k / b ** p) / (c b ** q) = k / (c b ** (p + q))

    for numbers k, c, p and q: −1 / (4 a^{3/2}) for √a's second
    derivative, not 1 / t / t / (4 t). A numerator that is no number
    keeps its quotients, which the derivative rules collect
    (common_divisor, computed_quotient)."""
    if not (is_op(a, "div") and isinstance(a.args[0], Const)):
        return None
    base, p = _base_power(a.args[1])
    c, rest = _coefficient(b)
    if rest is None:
        return None
    other, q = _base_power(rest)
    if other is not base:
        return None
    return div(a.args[0], mul(const(c), power(base, const(p + q))))
