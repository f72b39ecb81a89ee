"""Derivative rules for a broadcast divisor (a column v[:, None], a row
v[None, :] or a scalar s), so a normalised value is divided once: terms
over one divisor are one quotient (A / s + B / s = (A + B) / s), a sum
along an axis the divisor is constant on leaves it out (sum(A / v[:, None],
1) = sum(A, 1) / v), and C over a divisor the forward pass already divided
it by is read back as that value ((a / v)[:, None] ⊙ C = a[:, None] ⊙ Y for
Y = C / v[:, None]). Layer normalisation's backward pass is the case:
(G − mean(G) − Y ⊙ mean(G ⊙ Y)) / s."""

from __future__ import annotations

from typing import Iterator

from ..ir.expr import Const, Expr, const, is_op
from ..ops import _coefficient, add, col, div, mul, rebuild, reduce_sum, row
from .collect import _unmark

_SPREAD = {"col": col, "row": row, "scalar": lambda v: v, "kept": lambda v: v}
DEPTH = 4     # how far below a term a divisor is looked for (a chain of products is deep)


def _kind(d: Expr, frame: str | None, ndim: int) -> tuple | None:
    """(kind, v) for a divisor d = v spread as kind ("col", "row", "scalar",
    or "kept": d itself, of the term's `ndim` with an axis of length 1, as a
    reduction with keepdims) in a term of frame `frame` (None for a matrix or
    an array, "col" or "row" for the vector of a column or row, a vector in
    a matrix being a row), else None."""
    if not d.shape:
        return None if isinstance(d, Const) else ("scalar", d)
    if frame is None and is_op(d, "col", "row"):
        return d.op, d.args[0]
    if frame is not None and d.ndim == 1:
        return frame, d
    if frame is None and d.ndim == ndim >= 2 and any(n == 1 for n in d.shape):
        return "kept", d
    return None


def _frame(x: Expr, part: Expr, frame: str | None) -> str | None:
    """The frame of `part`, an operand of x: a vector in a matrix is a row."""
    return "row" if frame is None and x.ndim == 2 and part.ndim == 1 else frame


def quotients(x: Expr, computed: set, frame: str | None = None,
              depth: int = DEPTH) -> Iterator[tuple]:
    """((kind, v), rest) for each way x = rest / v spread as kind: a divisor
    of a quotient, a factor or a column or row of x, at most `depth` levels
    down. A value the forward pass computes is whole (taking it apart would
    compute it again)."""
    if depth == 0 or x in computed or is_op(x, "name"):
        return
    if is_op(x, "adjoint"):
        yield from quotients(x.args[0], computed, frame, depth - 1)
    elif is_op(x, "div"):
        a, d = x.args
        kind = _kind(d, _frame(x, d, frame), x.ndim)
        if kind is not None:
            yield kind, a
        for key, rest in quotients(a, computed, _frame(x, a, frame), depth - 1):
            yield key, div(rest, d)
    elif is_op(x, "mul"):
        for i, f in enumerate(x.args):
            others = x.args[:i] + x.args[i + 1:]
            for key, rest in quotients(f, computed, _frame(x, f, frame), depth - 1):
                yield key, mul(*others, rest)
    elif is_op(x, "col", "row") and frame is None:
        for key, rest in quotients(x.args[0], computed, x.op, depth - 1):
            if rest.ndim == 1:                             # (s / v)[:, None] stays a quotient
                yield key, rebuild(x, (rest,))


def _same(key: tuple, other: tuple) -> bool:
    """One divisor up to the names of the forward values."""
    return key[0] == other[0] and _unmark(key[1]) is _unmark(other[1])


def common_divisor(node: Expr, computed: set) -> Expr | None:
    """A / v[:, None] + B / v[:, None] = (A + B) / v[:, None], and likewise
    for rows and scalars, through columns ((a / v)[:, None] = a[:, None] /
    v[:, None]) and products: a divisor two terms share divides once."""
    if not is_op(node, "add") or node in computed:
        return None
    seen: list[tuple] = []
    for t in node.args:
        for key, rest in quotients(t, computed, _frame(node, t, None)):
            group = next((g for g in seen if _same(g[0], key)), None)
            if group is None:
                seen.append((key, [(t, rest)]))
            elif all(u is not t for u, _ in group[1]):
                group[1].append((t, rest))
    for (kind, v), group in seen:
        if len(group) > 1:
            others = (a for a in node.args if all(a is not t for t, _ in group))
            result = add(div(add(*(rest for _, rest in group)), _SPREAD[kind](v)), *others)
            if result.shape == node.shape:
                return result
    return None


def sum_of_quotient(node: Expr, computed: set) -> Expr | None:
    """sum(A / v[:, None], 1) = sum(A, 1) / v and sum(A / v[None, :], 0) =
    sum(A, 0) / v; sum(A / s, axis) = sum(A, axis) / s for a scalar s; and
    sum(A / d, I, keepdims=True) = sum(A, I, keepdims=True) / d for d of
    length 1 along I: what is constant along the summed axes divides the
    smaller sum."""
    if is_op(node, "expand_dims", "col", "row") and node not in computed:
        return _kept_sum_of_quotient(node, computed)
    if not is_op(node, "sum") or node in computed:
        return None
    x, axis = node.args[0], node.param("axis")
    flat = {"scalar", {1: "col", 0: "row"}.get(axis)}
    c, rest = _coefficient(x)
    for (kind, v), top in quotients(rest, computed) if rest is not None else ():
        if kind in flat and top.shape == x.shape:
            return mul(const(c), div(reduce_sum(top, axis), v))
    return None


def _kept_sum_of_quotient(node: Expr, computed: set) -> Expr | None:
    """sum(A / d, I, keepdims=True) = sum(A, I, keepdims=True) / d (the
    sum put back by expand_dims, or as a column or row of a matrix)."""
    axes = {"col": (1,), "row": (0,)}.get(node.op) or node.param("axis")
    x = node.args[0]
    summed = x.param("axis") if is_op(x, "sum") else None
    if summed is None or x.args[0].ndim != node.ndim or \
            (summed if isinstance(summed, tuple) else (summed,)) != axes:
        return None
    for (kind, d), top in quotients(x.args[0], computed):
        if kind == "kept" and all(d.shape[a] == 1 for a in axes) \
                and top.shape == x.args[0].shape:
            return div(rebuild(node, (reduce_sum(top, x.param("axis")),)), d)
    return None


def computed_quotient(node: Expr, computed: set) -> Expr | None:
    """(a / v)[:, None] ⊙ C = a[:, None] ⊙ Y where the forward pass computes
    Y = C / v[:, None], and likewise for rows (v[None, :] or v) and scalars:
    C over a divisor it was already divided by is the value that division
    named."""
    if not is_op(node, "mul") or node in computed:
        return None
    for i, f in enumerate(node.args):
        for (kind, v), rest in quotients(f, computed, _frame(node, f, None)):
            for j, c in enumerate(node.args):
                value = None if j == i else _computed(c, kind, v, computed)
                if value is not None:
                    others = (a for k, a in enumerate(node.args) if k not in (i, j))
                    result = mul(*others, rest, value)
                    if is_op(result, "mul") and value in result.args:   # not merged away
                        return result
    return None


def _computed(c: Expr, kind: str, v: Expr, computed: set) -> Expr | None:
    """c / v spread as kind, where the forward pass computes it, else None."""
    if kind == "scalar":
        fits = bool(c.shape)
    elif kind == "kept":
        fits = c.ndim == v.ndim
    else:
        fits = c.ndim == 2 and v.shape == (c.shape[:1] if kind == "col" else c.shape[1:])
    if not fits:
        return None
    spreads = (_SPREAD[kind](v), v) if kind == "row" else (_SPREAD[kind](v),)
    return next((q for q in (div(c, d) for d in spreads) if q in computed), None)
