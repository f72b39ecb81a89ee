"""A gradient's masks select: the factors a mask multiplies go into its branch.

A derivative through where(k, a, b) is a mask, where(k, g, 0), multiplied by
the slopes of the branch below it. The builders move numbers and the
branches of 0/1 masks in (`mul_into_where`); in a gradient every factor
goes in, so the slope of a branch the function does not take (1 / x at
x = 0 under where(x > 0, log(x), 0)) never meets the mask's 0: the
gradient is 0 there, not 0 · ∞ = NaN.
"""

from __future__ import annotations

from ..ir.expr import Expr, is_op
from ..ops.textbook_forms import divided_where, into_where, selecting_mask
from .collect import _unmark


def masked_branch(node: Expr, computed: set) -> Expr | None:
    """where(k, a, 0) ⊙ h = where(k, a ⊙ h, 0) and where(k, a, 0) / h =
    where(k, a / h, 0) in a gradient (likewise for where(k, 0, b))."""
    if node in computed or not is_op(node, "mul", "div"):
        return None
    if is_op(node, "div"):
        mask = _unmark(node.args[0])
        return divided_where(mask, node.args[1]) if selecting_mask(mask) else None
    masked = [f for f in node.args if selecting_mask(_unmark(f))]
    return into_where(_unmark(masked[0]), [f for f in node.args if f is not masked[0]]) \
        if masked else None
