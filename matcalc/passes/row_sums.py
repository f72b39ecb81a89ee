"""A rule for sums whose value is known from the rows they add up: one-hot
rows and softmax rows sum to 1, the identity's rows to 1, a constant's to
the constant times their length, and sums and multiples of these add up
alike (a label-smoothed target 0.9 Y + 0.1 / K sums to 1 along each
row, so its softmax cross-entropy's gradient is (softmax(Z) − T) / N)."""

from __future__ import annotations

import sympy

from ..ir.expr import Const, Expr, Var, const, is_op
from ..ops import mul, ones
from .collect import _unmark


def _total(x: Expr, axes: tuple, shape: tuple) -> sympy.Expr | None:
    """c with sum(x, axes) = c at every index left, for x broadcast to
    `shape`; None where it is not known."""
    x = _unmark(x)
    if isinstance(x, Const):
        return x.value * sympy.Mul(*(shape[a] for a in axes))
    if x.shape != shape:
        return None
    if is_op(x, "mul") and isinstance(x.args[0], Const):
        rest = x.args[1:]
        inner = _total(rest[0], axes, shape) if len(rest) == 1 else None
        return None if inner is None else x.args[0].value * inner
    if is_op(x, "add"):
        parts = [_total(t, axes, shape) for t in x.args]
        return None if any(p is None for p in parts) else sympy.Add(*parts)
    unit = _unit_axes(x, axes)
    if unit is not None and set(unit) <= set(axes):
        return sympy.Mul(*(shape[a] for a in axes if a not in unit))
    return None


def _unit_axes(x: Expr, axes: tuple) -> tuple | None:
    """Axes along which the entries of x sum to 1: a one-hot row's, a
    softmax's, either axis of the identity (the first of `axes`)."""
    if _one_hot(x):
        return (x.ndim - 1,)
    if is_op(x, "softmax"):
        axis = x.param("axis")
        return tuple(range(x.ndim)) if axis is None else \
            tuple(a % x.ndim for a in (axis if isinstance(axis, tuple) else (axis,)))
    if is_op(x, "eye") and axes:
        return axes[:1]
    return None


def _one_hot(x: Expr) -> bool:
    """Whether x has one-hot rows: a `onehot` variable, or eye(C)[labels]."""
    return (isinstance(x, Var) and x.domain == "onehot") or (
        is_op(x, "gather") and is_op(x.args[0], "eye"))


def known_sum(node: Expr, computed: set) -> Expr | None:
    """sum(c Y, axis=-1) = c 1 for Y with one-hot or softmax rows (each sums
    to 1), sum(I, axis) = 1, sum(c, axis) = c n for a constant broadcast
    along n entries, and so for sums of these: sum(0.9 Y + 0.1 / K,
    axis=1) = 1."""
    if not is_op(node, "sum"):  # a number, even where the forward pass computes the sum
        return None
    x = node.args[0]
    axis = node.param("axis")
    axes = tuple(range(x.ndim)) if axis is None else tuple(
        a % x.ndim for a in (axis if isinstance(axis, tuple) else (axis,)))
    total = _total(x, axes, x.shape)
    if total is None:
        return None
    return mul(const(total), ones(node.shape)) if node.shape else const(total)
