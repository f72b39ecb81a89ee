"""Axes: reductions over them, putting them back, and the adjoint of
broadcasting.

A reduction's axes have one form (`normal_axis`): None for every axis, 0 or
1 for a matrix, a sorted tuple for an array of three or more dimensions.
`expand` undoes the shape change of a reduction so its result broadcasts
against the input again; `unbroadcast` sums the axes that broadcasting
repeated (the adjoint of a broadcast).
"""

from __future__ import annotations

import sympy

from ..errors import ShapeError
from ..ir.expr import Expr, apply, const, is_op
from ..ir.shapes import Shape, fmt
from . import rulebook
from .builders import (BUILDERS, _SYMBOL_BUILDERS, _coefficient, col, func, is_zero, mul,
                       ones, row, zeros)
from .core import OPS


def normal_axis(x: Expr, axis, what: str):
    """A reduction's axes in one form: None (every axis), 0 or 1 for a
    matrix, and for an array of more dimensions a sorted tuple (a vector's
    only axis, or every axis, is None). Negative axes count from the end."""
    if axis is None:
        return None
    axes = axis if isinstance(axis, tuple) else (axis,)
    if not x.shape:
        raise ShapeError(f"{what} over axis {axis} of a scalar")
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise ShapeError(f"axis {a} is out of range for a {fmt(x.shape)} array (its "
                             f"axes are 0 to {x.ndim - 1}, or -{x.ndim} to -1 from the end)")
    named = [a % x.ndim for a in axes]
    if len(set(named)) != len(named):
        twice = next(a for a in axes if named.count(a % x.ndim) > 1)
        raise ShapeError(f"{what}: axis {axis} names axis {twice % x.ndim} twice (negative "
                         f"axes count from the end of the {x.ndim} axes)")
    axes = tuple(sorted(set(named)))
    if len(axes) == x.ndim:
        return None
    return axes[0] if x.ndim <= 2 else axes


def expand(g: Expr, axis) -> Expr:
    """A reduction's result made to broadcast against its input again: the
    reduced axes put back as axes of size 1, except leading ones (which
    broadcasting puts back by itself)."""
    if axis == 1:
        return col(g)
    if not isinstance(axis, tuple):
        return g
    lead = next((k for k, a in enumerate(axis) if a != k), len(axis))
    inner = tuple(a - lead for a in axis[lead:])
    return expand_dims(g, inner) if inner else g


def expand_dims(x: Expr, axis: tuple) -> Expr:
    """`x` with axes of size 1 inserted at the positions `axis` of the
    result (NumPy's expand_dims; a vector's column is `col`)."""
    if x.ndim == 1 and axis == (1,):
        return col(x)
    if x.ndim == 1 and axis == (0,):
        return row(x)
    c, rest = _coefficient(x)
    if rest is None or is_op(rest, "ones", "zeros"):  # a constant array stays one
        node = apply(OPS["expand_dims"], (x,), (("axis", tuple(axis)),))
        return zeros(node.shape) if is_zero(x) else mul(const(c), ones(node.shape))
    if is_op(x, "expand_dims"):
        inner = list(x.param("axis"))
        for a in axis:  # the positions of the inner insertions move past the outer
            inner = [i + 1 if i >= a else i for i in inner]
        return expand_dims(x.args[0], tuple(sorted(inner + list(axis))))
    if (identity := rulebook.first("expand_dims", x, axis=tuple(axis))) is not None:
        return identity
    return apply(OPS["expand_dims"], (x,), (("axis", tuple(axis)),))


def spread(b: Expr) -> tuple[Expr, int | None]:
    """(r, axis): the operand `b` of an elementwise operation is r repeated
    along `axis` of the other operand (NumPy broadcasting, orientation
    explicit): r[:, None] along axis 1, a bare vector r or r[None, :] along
    axis 0 (a vector lines up with the last axis), a scalar along every axis
    (None). So `X - r` undoes a reduction r over `axis` of X exactly when
    spread(b) gives that axis, whatever the sizes (X may be square)."""
    if is_op(b, "col"):
        return b.args[0], 1
    if is_op(b, "row"):
        return b.args[0], 0
    return b, (0 if b.ndim == 1 else None)


def reduce_sum(x: Expr, axis=None) -> Expr:
    """`sum(x, axis)`: over everything (axis None), rows (0) or columns (1)
    of a matrix, or the axes of a tuple."""
    axis = normal_axis(x, axis, "sum")
    if not x.shape:
        return x
    if (identity := rulebook.first("sum", x, axis=axis)) is not None:
        return identity
    node = apply(OPS["sum"], (x,), (("axis", axis),))
    if is_zero(x):
        return zeros(node.shape)
    c, rest = _coefficient(x)
    if is_op(rest, "ones"):                                  # sum(c 1) = c · count 1
        return mul(const(c * _count(x, axis)), ones(node.shape))
    return node


def _count(x: Expr, axis) -> sympy.Expr:
    """How many entries of `x` a reduction over `axis` (normalised) adds."""
    if axis is None:
        return sympy.Mul(*x.shape)
    return sympy.Mul(*(x.shape[a] for a in (axis if isinstance(axis, tuple) else (axis,))))


def mean(x: Expr, axis=None) -> Expr:
    """`mean(x, axis)` = sum(x, axis) / (number of terms)."""
    total = reduce_sum(x, axis)
    return mul(const(1 / sympy.sympify(_count(x, normal_axis(x, axis, "mean")))), total)


def softmax(x: Expr, axis: int | None = None) -> Expr:
    """exp(x) / sum(exp(x), axis), computed stably."""
    if not x.shape:
        raise ShapeError("softmax needs an array, got a scalar (the softmax of one number "
                         "is 1)")
    return func("softmax", x, axis=normal_axis(x, axis, "softmax"))


def logsumexp(x: Expr, axis: int | None = None) -> Expr:
    """log(sum(exp(x), axis)), computed stably."""
    axis = normal_axis(x, axis, "logsumexp")
    return x if not x.shape else func("logsumexp", x, axis=axis)


def unbroadcast(g: Expr, shape: Shape) -> Expr:
    """Adjoint of broadcasting `shape` up to `g.shape`: sum the broadcast axes."""
    if not shape:
        return reduce_sum(g)
    if len(shape) == 1 and shape[0] == 1 and g.shape[-1] != 1:
        return mul(ones(shape), reduce_sum(g))
    if g.ndim > 2:
        return _unbroadcast_nd(g, tuple(shape))
    while g.ndim > len(shape):
        g = reduce_sum(g, 0 if g.ndim == 2 else None)
    if g.ndim == 2 and g.shape != tuple(shape):
        if shape[0] == 1 and g.shape[0] != 1:
            g = row(reduce_sum(g, 0))
        if shape[1] == 1 and g.shape[1] != 1:
            g = col(reduce_sum(g, 1))
    return g


def _unbroadcast_nd(g: Expr, shape: Shape) -> Expr:
    """Σ over the leading axes `shape` lacks and over the axes where it has
    size 1 and `g` does not; those size-1 axes put back."""
    lead = g.ndim - len(shape)
    ones_at = tuple(k for k, n in enumerate(shape) if n == 1 and g.shape[lead + k] != 1)
    axes = tuple(range(lead)) + tuple(lead + k for k in ones_at)
    if not axes:
        return g
    r = reduce_sum(g, axes)
    return expand_dims(r, ones_at) if ones_at else r


BUILDERS.update({"sum": reduce_sum, "mean": mean, "softmax": softmax, "logsumexp": logsumexp})
_SYMBOL_BUILDERS["expand_dims"] = expand_dims
