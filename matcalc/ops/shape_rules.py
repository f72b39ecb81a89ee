"""Shape rules of the operators: `rule(shapes, params) -> shape`."""

from __future__ import annotations

import sympy

from ..errors import ShapeError
from ..ir.shapes import broadcast, fmt, require_square

def _same(s, p):
    return s[0]


def _broadcast(s, p):
    return broadcast(*s)


def _matmul_shape(s, p):
    """NumPy's `a @ b`: a vector is a row (left) or a column (right), the
    axes before the last two are stacks, broadcast against each other."""
    a, b = s
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    if inner_a != inner_b:
        raise ShapeError(f"'@' of {fmt(a)} and {fmt(b)}: inner dimensions "
                         f"{inner_a} and {inner_b} differ")
    if len(a) <= 2 and len(b) <= 2:
        return a[:-1] + b[1:]
    try:
        batch = broadcast(a[:-2], b[:-2])
    except ShapeError:
        raise ShapeError(f"'@' of {fmt(a)} and {fmt(b)}: the stacks {fmt(a[:-2])} and "
                         f"{fmt(b[:-2])} do not broadcast") from None
    return batch + a[-2:-1] + b[-1:] if len(b) > 1 else batch + a[-2:-1]


def _transpose_shape(s, p):
    return s[0][::-1]


def _sum_shape(s, p):
    """The shape left by a reduction over `axis` (None, an int or a tuple,
    normalised by the builders)."""
    shape, axis = s[0], p.get("axis")
    if axis is None:
        return ()
    axes = axis if isinstance(axis, tuple) else (axis,)
    for a in axes:
        if not 0 <= a < len(shape):
            raise ShapeError(f"axis {a} is out of range for a {fmt(shape)} array")
    return tuple(n for k, n in enumerate(shape) if k not in axes)


def _expand_dims_shape(s, p):
    """Sizes of 1 inserted at the positions `axis` of the result."""
    shape, axis = list(s[0]), p["axis"]
    ndim = len(shape) + len(axis)
    if any(not 0 <= a < ndim for a in axis):
        raise ShapeError(f"expand_dims: axis {axis} is out of range for a "
                         f"{ndim}-dimensional result")
    for a in sorted(axis):
        shape.insert(a, sympy.Integer(1))
    return tuple(shape)


def _square_to(name, result):
    def rule(s, p):
        require_square(s[0], name)
        return () if result == "scalar" else s[0]
    return rule


def _vector(s, what):
    if len(s) != 1:
        raise ShapeError(f"{what} needs a vector, got {fmt(s)}")


def _outer_shape(s, p):
    _vector(s[0], "outer")
    _vector(s[1], "outer")
    return (s[0][0], s[1][0])


def _col_shape(s, p):
    _vector(s[0], "[:, None]")
    return (s[0][0], sympy.Integer(1))


def _row_shape(s, p):
    _vector(s[0], "[None, :]")
    return (sympy.Integer(1), s[0][0])


def _given_shape(s, p):
    return p["shape"]



def _rows_cols(rows, *more) -> tuple:
    """ones(N) is a vector of N entries, ones(N, D) an N x D matrix,
    ones(B, T, D) an array of three dimensions."""
    return (rows, *more)


def _eye(rows, cols=None) -> tuple:
    """eye(N) is N x N, eye(N, M) N x M."""
    return (rows, rows if cols is None else cols)


def _matrix_only(name: str):
    def rule(s, p):
        if len(s[0]) != 2:
            raise ShapeError(f"{name} needs a matrix, got {fmt(s[0])}")
        return s[0]
    return rule


def _matrices(name: str):
    """A matrix, or a stack of them (the last two axes), keeps its shape."""
    def rule(s, p):
        if len(s[0]) < 2:
            raise ShapeError(f"{name} needs a matrix or a stack of matrices, got {fmt(s[0])}")
        return s[0]
    return rule


def _cumsum_shape(s, p):
    return s[0]
