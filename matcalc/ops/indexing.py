"""Basic indexing and reshape: views of an array, and their adjoints.

`index(x, key)` is NumPy's basic indexing with a key already normalised by
`normal_key`: one entry per axis of x (integers, negative ones too, and
slices as (start, stop, step) triples) with `None` where a new axis of size
1 goes, trailing whole slices dropped. Its adjoint `unindex(g, shape, key)`
is the gradient placed into zeros of x's shape (zeros(shape).at[key].set(g)).
`reshape(x, shape)` keeps the entries in C order; its adjoint is the reshape
back.
"""

from __future__ import annotations

import sympy

from ..errors import ShapeError
from ..ir.expr import Const, Expr, Var, apply, const, is_op, postorder
from ..ir.shapes import Shape, broadcast, fmt
from .axes import expand_dims, unbroadcast
from .builders import (BUILDERS, _SYMBOL_BUILDERS, _coefficient, col, is_zero, mul, ones, row,
                       zeros)
from .core import OPS, Op, _register, _view, unnamed

WHOLE = (None, None, None)


def size_value(node: Expr):
    """The number a constant node stands for, through named intermediates
    (D = H * E with H = 2 is 2 E), else None."""
    node = unnamed(node)
    if isinstance(node, Const):
        return node.value
    if is_op(node, "mul", "div"):
        parts = [size_value(a) for a in node.args]
        if None in parts:
            return None
        return parts[0] / parts[1] if node.op == "div" else sympy.Mul(*parts)
    return None


def key_text(key: tuple) -> str:
    """The key as NumPy writes it: `:, -1`, `..., 1:`, `::-1`, `:, :, None`."""
    def entry(e):
        if not isinstance(e, tuple):  # an integer (symbolic in concatenate's parts) or None
            return str(e)
        start, stop, step = ("" if p is None else str(p) for p in e)
        return f"{start}:{stop}" + (f":{step}" if step else "")
    return ", ".join(entry(e) for e in key) or "..."


def key_code(key: tuple) -> str:
    """The key as a Python tuple, for a function that takes it:
    `(slice(None), -1)`."""
    def entry(e):
        if not isinstance(e, tuple):
            return str(e)
        parts = list(e) if e[2] is not None else list(e[:2]) if e[0] is not None else [e[1]]
        return f"slice({', '.join(map(str, parts))})"
    return "(" + ", ".join(entry(e) for e in key) + ("," if len(key) == 1 else "") + ")"


def negative_step(key: tuple) -> bool:
    """Whether a slice of the key steps backwards (X[::-1])."""
    return any(isinstance(e, tuple) and (e[2] or 1) < 0 for e in key)


def normal_key(shape: Shape, items: list) -> tuple:
    """NumPy's basic index `items` (ints, slices, None, Ellipsis) over an
    array of `shape`: one entry per axis, `...` expanded, slices as
    (start, stop, step) with a step of 1 written as None, trailing whole
    slices dropped."""
    if sum(i is Ellipsis for i in items) > 1:
        raise ShapeError("an index can have only one '...'")
    taken = sum(i is not None and i is not Ellipsis for i in items)
    if taken > len(shape):
        raise ShapeError(f"too many indices: {taken} for a {fmt(shape)} array "
                         f"({len(shape)} dimension{'s' * (len(shape) != 1)})")
    key, axis = [], 0
    for i in items:
        if i is Ellipsis:
            key += [WHOLE] * (len(shape) - taken)
            axis += len(shape) - taken
        elif isinstance(i, slice):
            key.append(_clipped(i, shape[axis]))
        else:
            key.append(i)
        axis += i is not None and i is not Ellipsis
    if Ellipsis not in items:
        key += [WHOLE] * (len(shape) - taken)
    while key and key[-1] == WHOLE:
        key.pop()
    return tuple(key)


def _clipped(i: slice, n) -> tuple:
    """(start, stop, step) of a slice over an axis of size n, a bound past
    an end at every size written None, as NumPy clips it (x[:N + 1] is
    x[:N]; the array API leaves such bounds unspecified)."""
    def outside(p, below):  # p + n ≤ below (before the start), or p ≥ n
        if p is None or not isinstance(p, (int, sympy.Expr)):
            return False
        return bool(sympy.sympify(p + n - below).is_nonpositive if below is not None
                    else sympy.sympify(p - n).is_nonnegative)
    forward = (i.step or 1) > 0
    start = None if outside(i.start, 0 if forward else None) else i.start
    stop = None if outside(i.stop, None if forward else -1) else i.stop
    return (start, stop, None if i.step == 1 else i.step)


def _index_shape(s, p):
    """The axes left by the key: an integer drops its axis, a slice keeps
    its length, None adds an axis of size 1."""
    shape, key = list(s[0]), p["key"]
    out = []
    for e in key:
        if e is None:
            out.append(sympy.Integer(1))
            continue
        n = shape.pop(0)
        if isinstance(e, tuple):
            out.append(_length(e, n))
        else:
            _position(e, n)
    return tuple(out + shape)


def _position(i, n) -> None:
    """Refuse an integer index outside an axis of size n: at a known size,
    or at every size (x[N] of an axis of N, i - n ≥ 0; x[-N - 1], i + n < 0)."""
    if isinstance(i, int) and sympy.sympify(n).is_Integer:
        outside = not -n <= i < n
    else:
        outside = bool(sympy.sympify(i + n).is_negative or sympy.sympify(i - n).is_nonnegative)
    if outside:
        raise ShapeError(f"index {i} is out of range for an axis of size {n}")


def _length(e: tuple, n):
    """The number of entries the slice `e` takes from an axis of size n; for
    a symbolic n the bounds are taken as within the axis (X[1:] has N - 1)."""
    start, stop, step = e
    step = 1 if step is None else step
    if step == 0:
        raise ShapeError("a slice step cannot be 0")
    if sympy.sympify(n).is_Integer and all(isinstance(p, int) or p is None for p in e):
        count = len(range(*slice(start, stop, step).indices(int(n))))
    else:
        count = _symbolic_length(start, stop, step, n)
    if count == 0:
        raise ShapeError(f"the slice {key_text((e,))} of an axis of size {n} is empty")
    return sympy.sympify(count)


def slice_bound(p, default, n):
    """A slice bound p over an axis of size n as a position: `default`
    where p is None, and a negative p counted from the end (x[:-N] too)."""
    if p is None:
        return sympy.sympify(default)
    p = sympy.sympify(p)
    return n + p if p.is_negative else p


def _symbolic_length(start, stop, step, n):
    """A slice's length over an axis of symbolic size n, which must be a
    whole expression in n (steps other than ±1 need bounds on one side)."""
    def at(p, default):
        return slice_bound(p, default, n)
    if step > 0:
        span = at(stop, n) - at(start, 0)
    else:
        span = at(start, n - 1) - (at(stop, 0) if stop is not None else sympy.Integer(-1))
    count = sympy.ceiling(sympy.sympify(span) / abs(step))
    if not (count.is_Integer or (count.is_integer and not count.has(sympy.ceiling))):
        raise ShapeError(f"the slice {key_text(((start, stop, None if step == 1 else step),))}"
                         f" of an axis of size {n}: its length is not a whole expression "
                         f"in {n}; use a step of 1 or -1, or a fixed size")
    if count.is_negative:  # x[:2 * N:-1] takes nothing at any size
        return 0
    return count


def index(x: Expr, items: list) -> Expr:
    """`x[items]`, NumPy's basic indexing: a column v[:, None] and a row
    v[None, :] stay `col` and `row`, new axes alone are `expand_dims`."""
    key = normal_key(x.shape, items)
    if x.ndim == 1 and key in ((WHOLE, None), (None,)):
        return col(x) if key == (WHOLE, None) else row(x)
    if all(e is None or e == WHOLE for e in key):
        news = tuple(k for k, e in enumerate(key) if e is None)
        return expand_dims(x, news) if news else x
    return index_by(x, key)


def unindex(g: Expr, shape: Shape, key: tuple) -> Expr:
    """Zeros of `shape` with g placed at `key` (the adjoint of indexing); a
    key of whole and reversed axes only is a reversal, its own adjoint."""
    if is_zero(g):
        return zeros(shape)
    if all(e in (WHOLE, (None, None, -1)) for e in key):
        return index_by(g, key)
    return apply(OPS["unindex"], (g,), (("key", key), ("shape", tuple(shape))))


def _unindex_shape(s, p):
    if (fits := _index_shape([p["shape"]], p)) != tuple(s[0]):
        raise ShapeError(f"zeros(...).at[{key_text(p['key'])}].set(g): g is {fmt(s[0])} "
                         f"but [{key_text(p['key'])}] of {fmt(p['shape'])} is {fmt(fits)}")
    return tuple(p["shape"])


_register(Op("index", _index_shape,
             lambda g, n, i: unindex(g, n.args[0].shape, n.param("key")),
             params=(("key", ()),), cheap=True,
             jvp=lambda n, d: index_by(d[0], n.param("key")),
             rule="d x[key] = dx[key]",
             identity="<G, X[key]> = <zeros with G at [key], X>"))
_register(Op("unindex", _unindex_shape,
             lambda g, n, i: index_by(g, n.param("key")),
             params=(("key", ()), ("shape", ())),
             jvp=lambda n, d: unindex(d[0], n.param("shape"), n.param("key")),
             rule="d unindex(g) = unindex(dg)",
             identity="<A, zeros with G at [key]> = <A[key], G>"))


def index_by(x: Expr, key: tuple) -> Expr:
    """`x[key]` for a key already normal (a constant array stays one)."""
    return _constant_or(apply(OPS["index"], (x,), (("key", key),)), x)


def _constant_or(node: Expr, x: Expr) -> Expr:
    """`node`, a view or gather of x, as the constant array it is when x
    is c 1 or 0."""
    c, rest = _coefficient(x)
    if rest is None or is_op(rest, "ones", "zeros"):
        return zeros(node.shape) if is_zero(x) else mul(const(c), ones(node.shape))
    return node


# ---------------------------------------------------------------- reshape ---
def reshape(x: Expr, shape: tuple) -> Expr:
    """`reshape(x, shape)`, entries in C order; one size may be -1 (the one
    the others leave). The sizes' product must be x's, as SymPy sees it."""
    shape = [sympy.sympify(d) for d in shape]
    total = sympy.Mul(*x.shape)
    if sum(d == -1 for d in shape) > 1:
        raise ShapeError("reshape: only one size can be -1")
    for d in shape:
        if d != -1 and not (d.is_integer and d.is_positive):
            raise ShapeError(f"reshape: the size {d} is not a positive whole number of "
                             "the dimensions; declare a product, as D = H * E")
    if -1 in shape:
        rest = sympy.cancel(total / sympy.Mul(*(d for d in shape if d != -1)))
        if not (rest.is_integer and rest.is_positive):
            raise ShapeError(f"reshape of {fmt(x.shape)} to {fmt(shape)}: the -1 would be "
                             f"{rest}, not a whole number")
        shape[shape.index(-1)] = rest
    shape = tuple(shape)
    while (inner := _view(x, "reshape")) is not None:  # reshape(reshape(x, s), t) = reshape(x, t)
        x = inner.args[0]
    if shape == tuple(x.shape):
        return x
    c, rest = _coefficient(x)
    if rest is None or is_op(rest, "ones", "zeros"):
        return zeros(shape) if is_zero(x) else mul(const(c), ones(shape))
    if c != 1:  # reshape(c x) = c reshape(x)
        return mul(const(c), reshape(rest, shape))
    return apply(OPS["reshape"], (x,), (("shape", shape),))


def _reshape_shape(s, p):
    if sympy.expand(sympy.Mul(*s[0]) - sympy.Mul(*p["shape"])) != 0:
        raise ShapeError(f"cannot reshape {fmt(s[0])} ({sympy.Mul(*s[0])} entries) "
                         f"to {fmt(p['shape'])} ({sympy.Mul(*p['shape'])} entries)")
    return tuple(p["shape"])


_register(Op("reshape", _reshape_shape,
             lambda g, n, i: reshape(g, n.args[0].shape), params=(("shape", ()),),
             jvp=lambda n, d: reshape(d[0], n.shape), cheap=True,
             rule="d reshape(x) = reshape(dx)",
             identity="<G, reshape(X)> = <reshape(G, shape of X), X>"))



# ----------------------------------------------------------------- gather ---
def gather(table: Expr, idx: Expr) -> Expr:
    """`table[idx]` for an integer array input idx: the rows (entries along
    the first axis) of table that idx names, of shape idx.shape +
    table.shape[1:] (an embedding lookup E[tokens], one-hot eye(C)[labels])."""
    if not (isinstance(idx, Var) and idx.domain == "int"):
        raise ShapeError("an index array must be an integer input (declared as "
                         "'tokens: B x T int')")
    if not table.shape:
        raise ShapeError("a scalar cannot be indexed")
    return _constant_or(apply(OPS["gather"], (table, idx)), table)


def scatter_add(g: Expr, idx: Expr, shape) -> Expr:
    """Zeros of `shape` (the table's) with each row of g added at the row
    idx names, repeated indices adding up: the adjoint of gather. g may be
    a broadcast of its rows (ones(S) ⊙ y is y: never made dense)."""
    shape = tuple(shape)
    if is_zero(g):
        return zeros(shape)
    if is_op(g, "mul") and any(is_op(f, "ones") for f in g.args):
        g = mul(*(f for f in g.args if not is_op(f, "ones")))
    return apply(OPS["scatter_add"], (g, idx), (("shape", shape),))


def indexed_sizes(exprs) -> dict[str, list]:
    """For each integer input the expressions index by, the sizes of the
    axes it indexes (a gather's table's rows, a scatter-add's result's),
    each once: its values i must satisfy -n <= i < n for the least n."""
    out: dict[str, list] = {}
    for node in postorder(exprs):
        if is_op(node, "gather", "scatter_add") and isinstance(node.args[1], Var):
            rows = node.args[0].shape[0] if node.op == "gather" else node.shape[0]
            sizes = out.setdefault(node.args[1].name, [])
            sizes += [] if rows in sizes else [rows]
    return out


def _gather_shape(s, p):
    table, idx = s
    return tuple(idx) + tuple(table[1:])


def _scatter_add_shape(s, p):
    g, idx = s
    rows = tuple(idx) + tuple(p["shape"][1:])
    if len(g) > len(rows) or broadcast(tuple(g), rows) != rows:
        raise ShapeError(f"scatter_add: {fmt(g)} does not broadcast to the index's "
                         f"{fmt(idx)} followed by rows of {fmt(p['shape'][1:])}")
    return tuple(p["shape"])


_register(Op("gather", _gather_shape,
             lambda g, n, i: scatter_add(g, n.args[1], n.args[0].shape) if i == 0 else None,
             nargs=2, jvp=lambda n, d: None if d[0] is None else gather(d[0], n.args[1]),
             rule="d E[idx] = dE[idx]",
             identity="<G, E[idx]> = <zeros with the rows of G added at idx, E>"))
_register(Op("scatter_add", _scatter_add_shape,
             lambda g, n, i: unbroadcast(gather(g, n.args[1]), n.args[0].shape) if i == 0
             else None,
             nargs=2, params=(("shape", ()),),
             jvp=lambda n, d: None if d[0] is None else scatter_add(d[0], n.args[1], n.shape),
             rule="d scatter_add(g) = scatter_add(dg)",
             identity="<A, scatter_add(G, idx)> = <A[idx], G>"))

BUILDERS["reshape"] = reshape
_SYMBOL_BUILDERS.update({"index": index_by, "gather": gather,
                         "unindex": lambda g, key, shape: unindex(g, shape, key),
                         "scatter_add": scatter_add})


# ------------------------------------------------------ concatenate, stack ---
def concatenate(arrays: list, axis: int = 0) -> Expr:
    """NumPy's concatenate of a few arrays along `axis`: their sizes there
    add up, the others must agree. Its adjoint slices each part back out."""
    arrays = _tuple_of_arrays(arrays, "concatenate")
    if any(not a.shape for a in arrays):
        raise ShapeError("concatenate joins arrays, not scalars: stack((a, b)) makes a vector")
    ndim = arrays[0].ndim
    if not isinstance(axis, int):
        raise ShapeError(f"concatenate takes one axis, an integer, got {axis}; to join "
                         "flattened arrays write concatenate((reshape(a, (-1,)), ...))")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for a {fmt(arrays[0].shape)} array")
    if len(arrays) == 1:
        return arrays[0]
    return apply(OPS["concatenate"], tuple(arrays), (("axis", axis % ndim),))


def stack(arrays: list, axis: int = 0) -> Expr:
    """NumPy's stack: the arrays, of one shape, along a new axis `axis`
    (concatenate of each with a new axis of size 1 there)."""
    arrays = _tuple_of_arrays(arrays, "stack")
    if len({a.shape for a in arrays}) != 1:
        raise ShapeError("stack takes a tuple of arrays of one shape: "
                         + ", ".join(fmt(a.shape) for a in arrays))
    ndim = arrays[0].ndim + 1
    if not isinstance(axis, int):
        raise ShapeError(f"stack takes one axis, an integer, got {axis}")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for a stack of {ndim} dimensions")
    return concatenate([expand_dims(a, (axis % ndim,)) for a in arrays], axis % ndim)


def _tuple_of_arrays(arrays, name: str) -> list:
    if not isinstance(arrays, (list, tuple)) or not arrays:
        raise ShapeError(f"{name} takes a tuple of arrays, as {name}((A, B), axis=0)")
    return list(arrays)


def _concatenate_shape(s, p):
    axis, first = p["axis"], s[0]
    for shape in s[1:]:
        if len(shape) != len(first) or any(a != b for k, (a, b) in enumerate(zip(first, shape))
                                           if k != axis):
            raise ShapeError(f"concatenate along axis {axis}: " + " and ".join(map(fmt, s))
                             + " differ on another axis")
    return first[:axis] + (sympy.Add(*(shape[axis] for shape in s)),) + first[axis + 1:]


def _part(g: Expr, node: Expr, i: int) -> Expr:
    """Argument i's part of g, the adjoint of a concatenate `node`."""
    axis = node.param("axis")
    start = sympy.Add(*(a.shape[axis] for a in node.args[:i]))
    stop = start + node.args[i].shape[axis]
    if node.args[i].shape[axis] == 1:  # one entry: g[..., start] with its axis kept
        at = int(start) if start.is_Integer else start
        return expand_dims(index_by(g, (WHOLE,) * axis + (at,)), (axis,))
    bound = [None if b == 0 or b == g.shape[axis] else int(b) if b.is_Integer else b
             for b in (start, stop)]
    return index_by(g, (WHOLE,) * axis + ((bound[0], bound[1], None),))


_register(Op("concatenate", _concatenate_shape, _part, nargs=None, params=(("axis", 0),),
             jvp=lambda n, d: concatenate([zeros(a.shape) if da is None else da
                                           for a, da in zip(n.args, d)], n.param("axis")),
             rule="d concatenate(A, B) = concatenate(dA, dB)",
             identity="<G, concatenate(A, B)> = <G's part of A, A> + <G's part of B, B>"))

BUILDERS.update({"concatenate": concatenate, "stack": stack})
_SYMBOL_BUILDERS["concatenate"] = lambda *arrays, axis: concatenate(arrays, axis)
