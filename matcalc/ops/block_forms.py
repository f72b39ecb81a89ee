"""A rule for an array assembled from blocks: the adjoints of slices of one
array (an LSTM's four gates G[:, 0:H], G[:, H:2H], …) add up to one
concatenation of their blocks, not to one array of zeros per block."""

from __future__ import annotations

import sympy

from ..ir.expr import Expr, is_op
from .builders import add, zeros
from .indexing import WHOLE, concatenate, slice_bound
from .rulebook import rule


def _block(t: Expr) -> tuple | None:
    """(shape, axis, start, stop) for zeros(shape).at[key].set(g) whose key
    slices one axis, step 1, and takes every other axis whole; else None."""
    if not is_op(t, "unindex"):
        return None
    shape, key = t.param("shape"), t.param("key")
    cut = [k for k, e in enumerate(key) if e != WHOLE]
    if len(cut) != 1 or not isinstance(key[cut[0]], tuple) or key[cut[0]][2] not in (None, 1):
        return None
    axis = cut[0]
    start, stop, _ = key[axis]
    size = shape[axis]
    return tuple(shape), axis, slice_bound(start, 0, size), slice_bound(stop, size, size)


def _in_order(blocks: list) -> list | None:
    """The blocks (start, stop, term) sorted by start, or None where their
    order is not known or two of them overlap."""
    def before(a, b) -> bool | None:
        return (b - a).is_nonnegative
    ordered: list = []
    for block in blocks:
        k = 0
        while k < len(ordered):
            known = before(block[0], ordered[k][0])
            if known is None:
                return None
            if known:
                break
            k += 1
        ordered.insert(k, block)
    if any(not before(a[1], b[0]) for a, b in zip(ordered, ordered[1:])):
        return None
    return ordered


@rule("add")
def add_sliced_blocks(*terms: Expr) -> Expr | None:
    """zeros.at[:, 0:H].set(A) + zeros.at[:, H:2H].set(B) = concatenate((A,
    B), axis=1)

    for blocks of one axis that do not overlap (zeros between them where
    they leave gaps, or at the ends)."""
    groups: dict = {}
    for t in terms:
        found = _block(t)
        if found is not None:
            groups.setdefault(found[:2], []).append((*found[2:], t))
    for (shape, axis), blocks in groups.items():
        ordered = _in_order(blocks) if len(blocks) > 1 else None
        if ordered is None:
            continue
        pieces, at = [], sympy.Integer(0)
        for start, stop, t in ordered:
            if start != at:
                pieces.append(zeros(shape[:axis] + (start - at,) + shape[axis + 1:]))
            pieces.append(t.args[0])
            at = stop
        if at != shape[axis]:
            pieces.append(zeros(shape[:axis] + (shape[axis] - at,) + shape[axis + 1:]))
        used = {id(b[2]) for b in blocks}
        return add(concatenate(pieces, axis), *(t for t in terms if id(t) not in used))
    return None
