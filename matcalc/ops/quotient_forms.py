"""Rules for repeated divisors and powers of a divisor: one power where a
textbook writes one, and a factor the divisor cancels."""

from __future__ import annotations

from ..ir.expr import Const, Expr, const, is_op
from ..ir.shapes import broadcast
from .builders import _coefficient, div, func, mul, power
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


@rule("div")
def div_cancel_power(a: Expr, b: Expr) -> Expr | None:
    """(b ⊙ a) / (c b ** p) = a / (c b ** (p - 1))

    for numbers c and p: the derivative of 1 / det(X), -(f X⁻ᵀ) / f², is
    -X⁻ᵀ / f (where b ≠ 0, as the quotient needs)."""
    c, rest = _coefficient(b)
    if rest is None or not is_op(a, "mul"):
        return None
    base, p = _base_power(rest)
    if p == 1 or not any(f is base for f in a.args):
        return None
    left = list(a.args)
    left.remove(base)
    result = div(mul(*left), mul(const(c), power(base, const(p - 1))))
    return result if result.shape == broadcast(a.shape, b.shape) else None


@rule("div")
def div_tangent(a: Expr, b: Expr) -> Expr | None:
    """sinh(x) / cosh(x) = tanh(x), sin(x) / cos(x) = tan(x)

    (log cosh's derivative is tanh, which does not overflow where sinh and
    cosh do)."""
    for top, bottom, quotient in (("sinh", "cosh", "tanh"), ("sin", "cos", "tan")):
        if is_op(a, top) and is_op(b, bottom) and a.args[0] is b.args[0]:
            return func(quotient, a.args[0])
    return None
