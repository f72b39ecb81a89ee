"""The values of the expression language that are not graph nodes: tuples
(axes, shapes, arrays to join), slices, strings and None, the keyword
values; and the subscripts and sizes they stand for."""

from __future__ import annotations

import sympy

from ..errors import ShapeError
from ..ops.indexing import size_value


def _subscript(item):
    """One subscript as Python's indexing takes it: an int, a slice of ints,
    None or Ellipsis."""
    if item is NONE:
        return None
    if item is ELLIPSIS:
        return Ellipsis
    if isinstance(item, Slice):
        return slice(*(None if p is None else _whole(p) for p in
                       (item.start, item.stop, item.step)))
    return _whole(item)


def _whole(node) -> int:
    """An index or slice bound: a fixed integer, or a whole expression in
    the dimensions (X[:N], as a concatenate's gradient prints)."""
    value = size_value(node)
    if value is not None and value.is_integer:
        return int(value) if value.is_Integer else value
    raise ShapeError("an index is an integer (a slice's bounds too), a slice, None, '...' "
                     "or an integer array input (as E[tokens])")


# Functions whose argument after the first may be a tuple of sizes, and
# those whose first argument is a tuple of arrays.
SHAPE_ARGUMENTS = ("reshape",)
ARRAY_TUPLES = ("concatenate", "stack")


def _sizes(item: "Tuple", text: str) -> tuple:
    """A tuple of sizes (reshape's): dimensions, products of them,
    integers, or -1."""
    out = []
    for node in item.items:
        value = size_value(node)
        if value is None or not value.is_integer:
            hint = "" if value is None else f" ({float(value):g} is not a whole number)" \
                if value.is_number else (f" ({value} is not a whole number of the dimensions: "
                                         "declare the product first, as D = H * E)")
            raise ShapeError("a size is a dimension, a product of them, an integer or -1"
                             + hint, line=item.where.line, column=item.where.column,
                             source=text)
        out.append(value)
    return tuple(out)


class _KeywordValue:
    """`None` (or an undeclared `True`, `False`): only a keyword value, so
    `axis=None` works and `keepdims=True` is refused by its keyword."""

    def __init__(self, text: str):
        self.text = text


class String(_KeywordValue):
    """A string, such as 'fro': only a keyword value (norm's ord=); `token`
    says where it is written."""

    def __init__(self, token):
        super().__init__(str(token))
        self.token = token

    @property
    def value(self) -> str:
        return self.text[1:-1]


class Tuple:
    """`(a, b, ...)`: axes or a shape, only ever a function's argument;
    `items` are the nodes, `where` the position of its '('."""

    def __init__(self, items: tuple, where):
        self.items = items
        self.where = where


class Slice:
    """`start:stop:step` in a subscript; each part a node or None."""

    def __init__(self, start, stop, step):
        self.start, self.stop, self.step = start, stop, step

    @property
    def whole(self) -> bool:
        """Whether it is `:` (every entry, in order)."""
        return self.start is None and self.stop is None and self.step is None


# Functions with a string or integers beside their operands (`_contraction`).
CONTRACTIONS = ("einsum", "transpose", "swapaxes")
NONE = _KeywordValue("None")
ELLIPSIS = _KeywordValue("...")
# Named constants, unless the problem declares the name.
CONSTANTS = {"pi": sympy.pi, "e": sympy.E}
KEYWORD_VALUES = {v.text: v for v in (NONE, _KeywordValue("True"), _KeywordValue("False"))}
