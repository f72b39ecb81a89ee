"""The operator table's entries for `logaddexp`, `clip`, comparisons and
`where`, `elu` and `leaky_relu` (whose derivatives are wheres), the masks
`triu`/`tril`, `cumsum`, the rectangular `eye(N, M)` and `norm` with `ord=`
and `axis=` (the elementwise functions erf, log2, log10, arcsinh, arccosh,
arctanh, silu and gelu are one line each in `table`); `log_sigmoid` builds
−softplus(−x).

Each entry is the mathematics only, as in `table`; the builders the
language calls by name are added to `builders.BUILDERS` here.
"""

from __future__ import annotations

import sympy

from ..errors import ShapeError
from ..ir.expr import Const, Expr, apply, const, is_op
from ..ir.shapes import fmt
from .builders import (BUILDERS, _coefficient, add, exp, func, is_zero, mul, neg, ones, power, sub,
                       zeros)
from .axes import reduce_sum, unbroadcast
from .core import OPS, Op, _register, param
from . import rulebook
from .shape_rules import _broadcast, _cumsum_shape, _eye, _given_shape, _matrices
from .table import _given, elementwise


def _logaddexp_share(n: Expr, i: int) -> Expr:
    """∂ logaddexp(a, b)/∂a = e^(a − y) with y = logaddexp(a, b) ≥ a: at most 1."""
    return exp(sub(n.args[i], n))


_register(Op("logaddexp", _broadcast,
             lambda g, n, i: unbroadcast(mul(g, _logaddexp_share(n, i)), n.args[i].shape),
             nargs=2, symmetry="args",
             jvp=lambda n, d: add(*_given(mul(_logaddexp_share(n, i), di)
                                          for i, di in enumerate(d) if di is not None)),
             rule="d logaddexp(a, b) = exp(a − y) da + exp(b − y) db",
             identity="<G, s ⊙ dA> = <s ⊙ G, dA>"))


# ------------------------------------------------------------------ clip ---
def _clip_shares(n: Expr) -> tuple[Expr, Expr, Expr]:
    """The derivative of clip(x, lo, hi) = min(max(x, lo), hi) by x, lo and
    hi: 1[lo ≤ x ≤ hi] (1 at the bounds, as PyTorch's clamp), 1[x < lo ≤ hi]
    and 1[max(x, lo) > hi]. Where lo > hi the value is hi, as NumPy and
    PyTorch define it, and so is the derivative (0, 0 and 1)."""
    x, lo, hi = n.args
    below, above = func("step", sub(lo, x)), func("step", sub(x, hi))
    ordered = sub(const(1), func("step", sub(lo, hi)))
    return (mul(sub(const(1), below), sub(const(1), above)), mul(below, ordered),
            sub(const(1), mul(sub(const(1), above), ordered)))


def _clip_jvp(n, d):
    return add(*_given(mul(s, di) for s, di in zip(_clip_shares(n), d) if di is not None))


_register(Op("clip", _broadcast,
             lambda g, n, i: unbroadcast(mul(g, _clip_shares(n)[i]), n.args[i].shape),
             nargs=3, jvp=_clip_jvp, symmetry="args",
             rule="d clip(x, lo, hi) = 1[lo ≤ x ≤ hi] dx + 1[x < lo ≤ hi] dlo"
                  " + 1[max(x, lo) > hi] dhi",
             identity="<G, s ⊙ dX> = <s ⊙ G, dX>"))


# ------------------------------------------------- comparisons and where ---
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")

# A comparison is a condition (true or false at each entry), never a number:
# the language takes it only as where's first argument, and it has no
# derivative.
_register(Op("compare", _broadcast, lambda g, n, i: None, nargs=2, params=(("op", "<"),),
             jvp=lambda n, d: None, symmetry="args"))


def _where_vjp(g, n, i):
    """The adjoint reaches a where the condition holds and b elsewhere."""
    if i == 0:
        return None
    cond = n.args[0]
    picked = where(cond, g, const(0)) if i == 1 else where(cond, const(0), g)
    return unbroadcast(picked, n.args[i].shape)


def _where_jvp(n, d):
    if d[1] is None and d[2] is None:
        return None
    return where(n.args[0], d[1] if d[1] is not None else const(0),
                 d[2] if d[2] is not None else const(0))


_register(Op("where", _broadcast, _where_vjp, nargs=3, jvp=_where_jvp,
             rule="d where(c, a, b) = where(c, da, db)",
             identity="<G, where(c, dA, dB)> = <where(c, G, 0), dA> + <where(c, 0, G), dB>"))


def compare(a: Expr, b: Expr, op: str) -> Expr:
    """The condition `a op b`, entry by entry (op one of COMPARISONS)."""
    return func("compare", a, b, op=op)


def where(cond: Expr, a: Expr, b: Expr) -> Expr:
    """a where `cond` (a comparison, or a name bound to one) holds, else b
    (with NumPy broadcasting)."""
    shape = _broadcast([cond.shape, a.shape, b.shape], {})
    if a is b:
        return mul(ones(shape), a)
    if is_zero(a) and is_zero(b):
        return zeros(shape)
    # c ones beside an array is c (the array gives the floating type and the
    # condition or the array the shape); beside a number it is c where the
    # condition gives the shape (code computes where(k, c, d) in the inputs'
    # floating type, `lowering._indicator`), else it stays, typed
    numbers = [x if isinstance(x, Const) else _scaled_ones(x) for x in (a, b)]
    if cond.shape == shape and all(n is not None for n in numbers):
        a, b = (x if isinstance(x, Const) else const(n) for x, n in zip((a, b), numbers))
    elif _scaled_ones(a) is not None and not isinstance(b, Const):
        a = const(_scaled_ones(a))
    elif _scaled_ones(b) is not None and not isinstance(a, Const):
        b = const(_scaled_ones(b))
    a, b = (_unspread(x, shape) for x in (a, b))
    node = rulebook.first("where", cond, a, b) or func("where", cond, a, b)
    return node if node.shape == shape else mul(ones(shape), node)


def _scaled_ones(x: Expr):
    """c for c 1 (an array of ones times a constant), else None."""
    c, rest = _coefficient(x)
    return c if is_op(rest, "ones") else None


def _unspread(x: Expr, shape) -> Expr:
    """A branch `ones(S) ⊙ y ⊙ …` as `y ⊙ …` where where's shape is S anyway
    and the rest is an array (where broadcasts it; a number would lose the
    floating type)."""
    if not is_op(x, "mul"):
        return x
    rest = [f for f in x.args if not (is_op(f, "ones") and f.shape == shape)]
    if len(rest) == len(x.args) or all(isinstance(f, Const) for f in rest):
        return x
    return mul(*rest)


# ------------------------------------------------------ elu and leaky_relu ---
def _number(value: float) -> Expr:
    """A parameter as a constant (1.0 as the integer 1)."""
    return const(int(value) if value.is_integer() else value)


# elu(x) = x for x > 0, alpha (eˣ − 1) else; d elu(x) = 1 for x > 0, else
# alpha eˣ = elu(x) + alpha (alpha at 0, as JAX and PyTorch have it).
elementwise("elu", lambda g, x, y: where(compare(x, const(0), ">"), g,
                                         mul(g, add(y, _number(param(y, "alpha"))))),
            params=(("alpha", 1.0),))
# leaky_relu(x) = x for x ≥ 0, negative_slope x else; d = 1 for x ≥ 0 (1 at 0,
# as JAX has it; PyTorch gives negative_slope there), negative_slope else.
elementwise("leaky_relu", lambda g, x, y: where(compare(x, const(0), ">="), g,
                                                mul(_number(param(y, "negative_slope")), g)),
            params=(("negative_slope", 0.01),))


def _with_number(name: str, x: Expr, key: str, value) -> Expr:
    """The elementwise `name` of x with the number `key` (left unset at its
    default, so that elu(x, alpha=1.0) is elu(x))."""
    value = float(value)
    return func(name, x) if value == dict(OPS[name].params)[key] else \
        func(name, x, **{key: value})


def elu(x: Expr, alpha=1.0) -> Expr:
    """x for x > 0, alpha (eˣ − 1) else."""
    return _with_number("elu", x, "alpha", alpha)


def leaky_relu(x: Expr, negative_slope=0.01) -> Expr:
    """x for x ≥ 0, negative_slope x else."""
    return _with_number("leaky_relu", x, "negative_slope", negative_slope)


def log_sigmoid(x: Expr) -> Expr:
    """log σ(x) = −softplus(−x), the stable form log(sigmoid(x)) takes too."""
    return neg(func("softplus", neg(x)))


# ---------------------------------------------- masks, cumsum, rectangular eye ---
def _triangle_vjp(g, n, i):
    """Masking is self-adjoint: <A, triu(B)> = <triu(A), B>."""
    return triangle(n.op, g, n.param("k"))


for _name in ("triu", "tril"):
    _register(Op(_name, _matrices(_name), _triangle_vjp, params=(("k", 0),),
                 jvp=lambda n, d: triangle(n.op, d[0], n.param("k")),
                 rule=f"d {_name}(X) = {_name}(dX)",
                 identity=f"<A, {_name}(B)> = <{_name}(A), B>"))

_register(Op("cumsum", _cumsum_shape, lambda g, n, i: _running("revcumsum", g, n),
             params=(("axis", 0),), jvp=lambda n, d: _running("cumsum", d[0], n),
             rule="d cumsum(x) = cumsum(dx)", identity="<A, cumsum(B)> = <revcumsum(A), B>"))
# The adjoint of cumsum: the sums from the end, y_i = Σ_{j ≥ i} x_j.
_register(Op("revcumsum", _cumsum_shape, lambda g, n, i: _running("cumsum", g, n),
             params=(("axis", 0),), jvp=lambda n, d: _running("revcumsum", d[0], n),
             rule="d revcumsum(x) = revcumsum(dx)",
             identity="<A, revcumsum(B)> = <cumsum(A), B>"))
# eye(N, M) with N ≠ M: ones on the main diagonal; not an identity, so none
# of the identities of `eye` applies to it.
_register(Op("eye_rect", _given_shape, None, nargs=0, dims=_eye, cheap=True))


def _running(name: str, x: Expr, like: Expr) -> Expr:
    """cumsum or revcumsum of x along the axis of the node `like`."""
    return zeros(x.shape) if is_zero(x) else func(name, x, axis=like.param("axis"))


def triangle(name: str, x: Expr, k: int = 0) -> Expr:
    """triu(X, k) keeps the entries on and above the k-th diagonal (j − i ≥ k),
    tril(X, k) those on and below it (j − i ≤ k); the rest are 0."""
    if not isinstance(k, int):
        raise ShapeError(f"{name}(X, k): k is an integer (the diagonal's offset), not {k}")
    return x if is_zero(x) else func(name, x, k=k)


def cumsum(x: Expr, axis: int | None = None, name: str = "cumsum") -> Expr:
    """The running sums along `axis` (a vector's only axis by default); from
    the end for `name` revcumsum."""
    if x.ndim == 0:
        raise ShapeError(f"{name} needs a vector or a matrix, got a scalar")
    if axis is None and x.ndim == 2:
        raise ShapeError(f"{name} of a matrix needs axis=0 or axis=1 (NumPy would flatten it)")
    if axis is None and x.ndim > 2:
        raise ShapeError(f"{name} of an array of {x.ndim} dimensions needs axis= "
                         "(NumPy would flatten it)")
    axis = 0 if axis is None else axis
    if not isinstance(axis, int):
        raise ShapeError(f"{name} takes one axis (an integer), not {axis}")
    if not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"axis {axis} is out of range for a {fmt(x.shape)} array")
    return x if is_zero(x) else func(name, x, axis=axis % x.ndim)


def constant_array(name: str, shape: tuple) -> Expr:
    """ones, zeros or eye of the given dimensions; eye(N) is the N x N
    identity, eye(N, M) with N ≠ M the N x M matrix of ones on its main
    diagonal (NumPy's)."""
    if name == "eye" and sympy.simplify(shape[0] - shape[1]) != 0:
        name = "eye_rect"
    return apply(OPS[name], (), (("shape", tuple(shape)),))


# ------------------------------------------------------------------ norm ---
_ORDERS = (None, 1, 2, "fro")


def norm(x: Expr, ord=None, axis: int | None = None) -> Expr:
    """NumPy's norm: a vector's 2-norm (ord=2, the default) or 1-norm
    (ord=1); a matrix's Frobenius norm (ord='fro', the default); with
    axis=, the vector norm of each column (0) or row (1)."""
    if ord not in _ORDERS:
        raise ShapeError(f"norm(ord={ord!r}) is not in the language: ord=2 or ord=1 for "
                         "vectors (or along an axis), ord='fro' for a matrix")
    if x.ndim == 0:
        raise ShapeError("norm needs a vector or a matrix, got a scalar")
    if axis is not None:
        if not isinstance(axis, int):
            raise ShapeError(f"norm(x, axis={axis}): axis is one integer (the vector norms "
                             "along it)")
        if not -x.ndim <= axis < x.ndim:
            raise ShapeError(f"axis {axis} is out of range for a {fmt(x.shape)} array")
        axis = None if x.ndim == 1 else axis % x.ndim
    if x.ndim > 2 and axis is None and ord is not None:
        raise ShapeError(f"norm(X, ord={ord!r}) of an array of {x.ndim} dimensions needs "
                         "axis= (without ord=, it is the 2-norm of every entry)")
    if x.ndim == 2 and axis is None:
        if ord not in (None, "fro"):
            raise ShapeError(f"norm(X, ord={ord}) of a matrix is an induced norm, not in "
                             "the language: ord='fro' is the Frobenius norm, and axis=0 "
                             "or axis=1 gives the vector norms of the columns or rows")
        return func("norm", x)
    if ord == "fro":
        raise ShapeError("ord='fro' is a matrix norm: a vector's 2-norm is ord=2 (the default)")
    if axis is None:
        return func("norm1" if ord == 1 else "norm", x)
    if ord == 1:
        return reduce_sum(func("abs", x), axis)
    return func("sqrt", reduce_sum(power(x, const(2)), axis))


BUILDERS.update({"triu": lambda x, k=0: triangle("triu", x, k),
                 "tril": lambda x, k=0: triangle("tril", x, k),
                 "cumsum": lambda x, axis=None: cumsum(x, axis),
                 "revcumsum": lambda x, axis=None: cumsum(x, axis, "revcumsum"),
                 "where": where, "norm": norm, "log_sigmoid": log_sigmoid,
                 "elu": elu, "leaky_relu": leaky_relu})
