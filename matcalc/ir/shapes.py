"""Symbolic shapes: tuples of SymPy dimensions, NumPy's broadcasting rule.

A shape is `()` (scalar), `(n,)` (1-D vector) or `(m, n)` (matrix); each
dimension is a positive-integer SymPy symbol or a SymPy integer.
"""

from __future__ import annotations

import sympy

from ..errors import ShapeError

Shape = tuple  # tuple[sympy.Expr, ...]


def dim(value: int | str | sympy.Expr) -> sympy.Expr:
    """A dimension from an integer or a name (a positive-integer symbol)."""
    if isinstance(value, str):
        return sympy.Symbol(value, integer=True, positive=True)
    return sympy.sympify(value)


def fmt(shape: Shape) -> str:
    """The shape as declared: `scalar`, `H`, `N x D`; a size of several
    terms in parentheses, `(D + 1) x N`."""
    if not shape:
        return "scalar"
    return " x ".join(f"({d})" if " " in str(d) else str(d) for d in shape)


def broadcast(*shapes: Shape) -> Shape:
    """NumPy broadcasting of symbolic shapes (align right; equal or 1)."""
    if all(s == shapes[0] for s in shapes):
        return shapes[0]
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(ndim):
        size = sympy.Integer(1)
        for shape in shapes:
            k = axis - (ndim - len(shape))
            if k < 0 or shape[k] is sympy.S.One:
                continue
            if size is sympy.S.One:
                size = shape[k]
            elif shape[k] != size:
                raise ShapeError(
                    "shapes do not broadcast: "
                    + " and ".join(fmt(s) for s in shapes))
        out.append(size)
    return tuple(out)


def is_square(shape: Shape) -> bool:
    return len(shape) == 2 and shape[0] == shape[1]


def require_square(shape: Shape, what: str) -> None:
    if not is_square(shape):
        raise ShapeError(f"{what} needs a square matrix, got {fmt(shape)}")


def symbols(shape: Shape) -> set:
    """The dimension symbols a shape mentions."""
    return set().union(*(sympy.sympify(d).free_symbols for d in shape)) if shape else set()
