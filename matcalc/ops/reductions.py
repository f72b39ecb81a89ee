"""The reductions the language writes with `axis=` (None, an integer or a
tuple) and `keepdims=`: sum, mean, max, min, logsumexp, and the sugar var,
std and log_softmax over them.

`max` and `min` are operators: their derivative goes to the entries that
attain the extremum, split evenly among ties (as JAX does),
∂ max(x)/∂x = 1[x = max(x)] / #{x = max(x)} along the reduced axes.
`keepdims=True` is the reduction with its reduced axes put back as axes of
size 1 (`expand_dims`, a view), so no operator carries it.
"""

from __future__ import annotations

import sympy

from ..errors import ShapeError
from ..ir.expr import Const, Expr, const, is_op
from .axes import _count, expand, expand_dims, logsumexp, mean, normal_axis, reduce_sum, softmax
from .builders import BUILDERS, _coefficient, div, func, log, mul, ones, power, sub
from .core import Op, _register
from .functions import compare, where
from .rulebook import rule
from .shape_rules import _sum_shape


def _axes(x: Expr, axis) -> tuple:
    """The reduced axes of `x` as a tuple, from a normalised `axis`."""
    if axis is None:
        return tuple(range(x.ndim))
    return axis if isinstance(axis, tuple) else (axis,)


def kept(r: Expr, x: Expr, axis, keepdims: bool) -> Expr:
    """`r`, a reduction of `x` over the normalised `axis`, with the reduced
    axes put back as axes of size 1 where `keepdims`."""
    if keepdims is not True and keepdims is not False:
        raise ShapeError(f"keepdims must be True or False, not {keepdims}")
    axes = _axes(x, axis)
    return expand_dims(r, axes) if keepdims and axes else r


@rule("sum")
def sum_inserted_axes(x: Expr, axis) -> Expr | None:
    """sum(c expand_dims(r, I), A) = c sum(r, A − I) for axes I among A

    (the inserted axes have size 1: summing over them adds one term)."""
    c, rest = _coefficient(x)
    if not is_op(rest, "expand_dims"):
        return None
    inserted, axes = rest.param("axis"), _axes(x, axis)
    if not set(inserted) <= set(axes):
        return None
    others = tuple(a - sum(i < a for i in inserted) for a in axes if a not in inserted)
    r = rest.args[0]
    return mul(const(c), reduce_sum(r, others) if others else r)


@rule("expand_dims")
def expand_dims_coefficient(x: Expr, axis: tuple) -> Expr | None:
    """expand_dims(c v, I) = c expand_dims(v, I)

    and expand_dims(c / v, I) = c / expand_dims(v, I), as for columns: the
    constant joins the other constants of a product."""
    if is_op(x, "div") and isinstance(x.args[0], Const) and x.args[0].value != 1:
        return mul(x.args[0], div(const(1), expand_dims(x.args[1], axis)))
    c, rest = _coefficient(x)
    return mul(const(c), expand_dims(rest, axis)) if c != 1 and rest is not None else None


def _unit_sum(x: Expr, axes: tuple) -> Expr | None:
    """y for x = sum(y, axes) with y of length 1 along `axes`, else None."""
    if not is_op(x, "sum") or _axes(x.args[0], x.param("axis")) != axes:
        return None
    y = x.args[0]
    return y if all(y.shape[a] == 1 for a in axes) else None


@rule("expand_dims")
def expand_dims_unit_sum(x: Expr, axis: tuple) -> Expr | None:
    """sum(y, I, keepdims=True) = y for y of length 1 along the axes I

    (a sum over an axis of length 1 adds one term; put back, it is y)."""
    return _unit_sum(x, axis)


@rule("col")
def col_unit_sum(v: Expr) -> Expr | None:
    """sum(y, 1)[:, None] = y for y of n x 1

    (keepdims along axis 1 of a matrix: one term, put back)."""
    return _unit_sum(v, (1,))


@rule("row")
def row_unit_sum(v: Expr) -> Expr | None:
    """sum(y, 0)[None, :] = y for y of 1 x n

    (keepdims along axis 0 of a matrix: one term, put back)."""
    return _unit_sum(v, (0,))


def _ties(n: Expr) -> tuple[Expr, Expr]:
    """(1[x = y], #{x = y}) along the axes of the reduction n: y = max(x)
    (or min), the entries that attain it and how many they are."""
    x, axis = n.args[0], n.param("axis")
    mask = where(compare(x, expand(n, axis), "=="), ones(x.shape), const(0))
    return mask, reduce_sum(mask, axis)


def _winners(n: Expr) -> Expr:
    """1[x = y] / #{x = y}: the share of each entry of x in the derivative."""
    mask, count = _ties(n)
    return div(mask, expand(count, n.param("axis")))


def _shared(g: Expr, n: Expr) -> Expr:
    """The adjoint g of y = max(x) split among the ties, 1[x = y] ⊙ (g / #):
    g divided on y's axes, then spread (no x-sized quotient)."""
    mask, count = _ties(n)
    return mul(mask, expand(div(g, count), n.param("axis")))


def _extremum(name: str) -> Op:
    """max or min of x over `axis`; its derivative is split evenly among ties."""
    word = "max" if name == "max" else "min"
    return _register(Op(
        name, _sum_shape, lambda g, n, i: _shared(g, n),
        params=(("axis", None),),
        jvp=lambda n, d: reduce_sum(mul(_winners(n), d[0]), n.param("axis")),
        rule=f"d {word}(x) = sum(s ⊙ dx), s = 1[x = {word}(x)] / (number of ties)",
        identity="<a, sum(s ⊙ dx)> = <a s, dx>"))


_extremum("max")
_extremum("min")


def extremum(name: str, x: Expr, axis=None, keepdims: bool = False) -> Expr:
    """`max(x, axis)` or `min(x, axis)`: the largest (smallest) entry along `axis`."""
    axis = normal_axis(x, axis, name)
    if not x.shape:
        return x
    return kept(func(name, x, axis=axis), x, axis, keepdims)


def reduce_max(x: Expr, axis=None, keepdims: bool = False) -> Expr:
    """`max(x, axis)`: the largest entry along `axis`."""
    return extremum("max", x, axis, keepdims)


def reduce_min(x: Expr, axis=None, keepdims: bool = False) -> Expr:
    """`min(x, axis)`: the smallest entry along `axis`."""
    return extremum("min", x, axis, keepdims)


def written_sum(x: Expr, axis=None, keepdims: bool = False) -> Expr:
    """`sum(x, axis, keepdims)` as written."""
    return kept(reduce_sum(x, axis), x, _normal(x, axis, "sum"), keepdims)


def written_mean(x: Expr, axis=None, keepdims: bool = False) -> Expr:
    """`mean(x, axis, keepdims)` = sum / (number of terms)."""
    return kept(mean(x, axis), x, _normal(x, axis, "mean"), keepdims)


def written_logsumexp(x: Expr, axis=None, keepdims: bool = False) -> Expr:
    """`logsumexp(x, axis, keepdims)` = log(sum(exp(x), axis)), computed stably."""
    return kept(logsumexp(x, axis), x, _normal(x, axis, "logsumexp"), keepdims)


def log_softmax(x: Expr, axis=None) -> Expr:
    """log(softmax(x, axis)) = x − logsumexp(x, axis), computed stably."""
    return log(softmax(x, axis))


def var(x: Expr, axis=None, ddof: int = 0, keepdims: bool = False) -> Expr:
    """Σ (x − mean(x))² / (n − ddof) along `axis`, n the number of terms."""
    normal = _normal(x, axis, "var")
    if not isinstance(ddof, int):
        raise ShapeError(f"var: ddof is an integer, not {ddof}")
    count = _count(x, normal) if x.shape else sympy.Integer(1)
    if sympy.simplify(count - ddof).is_nonpositive:
        raise ShapeError(f"var with ddof={ddof} of {count} terms divides by zero")
    centred = sub(x, expand(mean(x, axis), normal)) if x.shape else sub(x, x)
    total = reduce_sum(power(centred, const(2)), axis)
    return kept(mul(const(1 / (count - ddof)), total), x, normal, keepdims)


def std(x: Expr, axis=None, ddof: int = 0, keepdims: bool = False) -> Expr:
    """sqrt(var(x, axis, ddof))."""
    return func("sqrt", var(x, axis, ddof, keepdims))


def _normal(x: Expr, axis, what: str):
    """`normal_axis`, with a scalar's reduction over everything allowed."""
    return None if not x.shape and axis is None else normal_axis(x, axis, what)


BUILDERS.update({"sum": written_sum, "mean": written_mean, "logsumexp": written_logsumexp,
                 "max": reduce_max, "min": reduce_min, "log_softmax": log_softmax,
                 "var": var, "std": std})
