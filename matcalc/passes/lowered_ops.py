"""The node kinds only a lowered program has (`passes.lowering` makes
them; the code targets print them): each a name and a shape rule, as the
table's operators have, and no derivative."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..ops import OPS


@dataclass(frozen=True)
class LoweredOp:
    """A node kind only a lowered program has: a name and a shape rule
    `shape(arg_shapes, params)`, as the table's operators have."""

    name: str
    shape: Callable


def _chain_shape(shapes, params):
    out = shapes[0]
    for s in shapes[1:]:
        out = OPS["matmul"].shape([out, s], {})
    return out


def _tensordot_shape(shapes, params):
    """The axes of a not in params["a"], then those of b not in params["b"],
    permuted by params["perm"] (None: in that order)."""
    (sa, sb), (a, b) = shapes, (params["a"], params["b"])
    free = [n for k, n in enumerate(sa) if k not in a] + \
        [n for k, n in enumerate(sb) if k not in b]
    return tuple(free[k] for k in params["perm"] or range(len(free)))


EINSUM = LoweredOp("einsum", lambda shapes, params: ())  # a full contraction
MULTI_DOT = LoweredOp("multi_dot", _chain_shape)         # A @ B @ C @ ...
MASK = LoweredOp("mask", lambda shapes, params: shapes[0])  # (x > 0): step(x), as a factor
SUBTRACT_PRODUCT = LoweredOp(                            # a - A @ B, into A @ B's memory
    "subtract_product", lambda shapes, params: _chain_shape(shapes[1:], params))
TENSORDOT = LoweredOp("tensordot", _tensordot_shape)     # Σ over axes a of x, b of y, permuted
MATRIX_TRANSPOSE = LoweredOp(                            # x with its last two axes swapped
    "matrix_transpose", lambda shapes, params: (*shapes[0][:-2], shapes[0][-1], shapes[0][-2]))
ORDERED_CONTRACT = LoweredOp(                            # an einsum in the order params["path"]
    "ordered_contract", lambda shapes, params: OPS["contract"].shape(shapes, params))
BROADCAST = LoweredOp(                                   # x broadcast to params["shape"]: a view
    "broadcast", lambda shapes, params: params["shape"])
BROADCAST_COPY = LoweredOp(                              # the same, as a new writeable array
    "broadcast_copy", lambda shapes, params: params["shape"])
FULL = LoweredOp("full", lambda shapes, params: params["shape"])  # a constant, as a new array
FILL = LoweredOp("fill", lambda shapes, params: params["shape"])  # zeros, a constant at ["key"]
INDICATOR = LoweredOp("indicator", lambda shapes, params: shapes[0])  # 1 where k holds, else 0
LOGICAL_NOT = LoweredOp("logical_not", lambda shapes, params: shapes[0])  # where k does not hold
UPDATE = LoweredOp("update", lambda shapes, params: shapes[0])  # a new product, terms in place
COPY = LoweredOp("copy", lambda shapes, params: shapes[0])  # a new array of x's values
LOWERED = {op.name: op for op in (EINSUM, MULTI_DOT, MASK, SUBTRACT_PRODUCT, UPDATE, COPY,
                                  TENSORDOT, MATRIX_TRANSPOSE, ORDERED_CONTRACT, BROADCAST,
                                  BROADCAST_COPY, FULL, FILL, INDICATOR, LOGICAL_NOT)}
assert not set(LOWERED) & set(OPS), "a lowered node kind shadows an operator"
