"""Permutations of axes: the `permute` operator (a view), written
`transpose(X, axes)`, `swapaxes(X, a, b)` and, for three or more axes, `X.T`
(every axis reversed, as NumPy)."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir.expr import Expr, apply, const, is_op
from ..ir.shapes import fmt
from .builders import (_SYMBOL_BUILDERS, BUILDERS, _coefficient, is_zero, mul, ones, transpose,
                       zeros)
from .core import OPS, Op, _register


def permute(x: Expr, axes: tuple) -> Expr:
    """`transpose(x, axes)`: axis k of the result is axis axes[k] of x."""
    axes = _normal_axes(x, axes)
    if axes == tuple(range(x.ndim)):
        return x
    if x.ndim == 2:
        return transpose(x)
    c, rest = _coefficient(x)
    shape = tuple(x.shape[a] for a in axes)
    if rest is None or is_op(rest, "ones", "zeros"):
        return zeros(shape) if is_zero(x) else mul(const(c), ones(shape))
    if c != 1:
        return mul(const(c), permute(rest, axes))
    if is_op(x, "contract"):                          # an einsum's output permuted
        terms, _, out = x.param("spec").partition("->")
        return _SYMBOL_BUILDERS["contract"](*x.args, spec=f"{terms}->"
                                            + "".join(out[a] for a in axes))
    if is_op(x, "permute"):
        inner = x.param("axes")
        return permute(x.args[0], tuple(inner[a] for a in axes))
    return apply(OPS["permute"], (x,), (("axes", axes),))


def _normal_axes(x: Expr, axes) -> tuple:
    """A permutation of x's axes (negative ones counted from the end)."""
    if axes is None:
        return tuple(reversed(range(x.ndim)))
    axes = tuple(axes) if isinstance(axes, tuple) else (axes,)
    if len(axes) != x.ndim or sorted(a % x.ndim if -x.ndim <= a < x.ndim else -1
                                     for a in axes) != list(range(x.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of the "
                         f"{x.ndim} axes of a {fmt(x.shape)} array")
    return tuple(a % x.ndim for a in axes)


def swapaxes(x: Expr, axis1: int, axis2: int) -> Expr:
    """`swapaxes(x, a, b)`: axes a and b exchanged."""
    for a in (axis1, axis2):
        if not -x.ndim <= a < x.ndim:
            raise ShapeError(f"swapaxes: axis {a} is out of range for a {fmt(x.shape)} array")
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return permute(x, tuple(axes))


def _inverse(axes: tuple) -> tuple:
    return tuple(sorted(range(len(axes)), key=lambda k: axes[k]))


def _permute_shape(s, p):
    axes = p["axes"]
    if sorted(axes) != list(range(len(s[0]))):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of the axes "
                         f"of a {fmt(s[0])} array")
    return tuple(s[0][a] for a in axes)


_register(Op("permute", _permute_shape,
             lambda g, n, i: permute(g, _inverse(n.param("axes"))), params=(("axes", ()),),
             jvp=lambda n, d: permute(d[0], n.param("axes")), cheap=True,
             rule="d transpose(X, p) = transpose(dX, p)",
             identity="<A, transpose(X, p)> = <transpose(A, p⁻¹), X>"))

BUILDERS.update({"transpose": permute, "swapaxes": swapaxes})
_SYMBOL_BUILDERS["permute"] = permute
