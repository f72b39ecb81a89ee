"""The operator table: one `Op` entry per operator.

Each entry is the operator's shape rule, its reverse-mode derivative rule
(one line per primitive in the manner of autograd), its differential for
the derivation shown step by step, and its written forms. Adding a function
to matcalc is adding one entry here.
"""

from __future__ import annotations

import functools
from typing import Callable

import sympy

from .. import precedence as P
from ..errors import ShapeError
from ..ir.expr import Expr, const
from ..ir.shapes import fmt, require_square
from .builders import (LONG, add, col, diag, div, exp, expand, eye, func, is_zero, kron,
                       log, matmul, mul, neg, ones, outer, power, reduce_sum, row,
                       shared_adjoint, solve, sub, transpose, unbroadcast, unkron_left,
                       unkron_right, zeros)
from .core import Form, Op, _is, _kwargs, _register, call, latex_call
from .shape_rules import (_broadcast, _col_shape, _given_shape, _matmul_shape, _outer_shape,
                          _row_shape, _same, _square_to, _sum_shape, _transpose_shape,
                          _vector)

def _matmul_vjp(g, node, i):
    a, b = node.args
    if i == 0:
        if a.ndim == 2:
            return matmul(g, transpose(b)) if b.ndim == 2 else outer(g, b)
        return matmul(b, g) if b.ndim == 2 else mul(g, b)
    if b.ndim == 2:
        return matmul(transpose(a), g) if a.ndim == 2 else outer(a, g)
    return matmul(transpose(a), g) if a.ndim == 2 else mul(g, a)


def _sum_vjp(g, node, i):
    x = node.args[0]
    if node.param("axis") == 1:
        g = col(g)
    return mul(ones(x.shape), g)


def _mul_vjp(g, node, i):
    if len(node.args) > LONG:
        before, after = _partial_products(node.args)
        return unbroadcast(mul(g, before[i], after[i]), node.args[i].shape)
    others = node.args[:i] + node.args[i + 1:]
    return unbroadcast(mul(g, *others), node.args[i].shape)


def _mul_jvp(node, d):
    """Product rule: d(a₁ ⋯ aₖ) = Σᵢ (a₁ ⋯ aᵢ₋₁) daᵢ (aᵢ₊₁ ⋯ aₖ)."""
    args = node.args
    if len(args) <= LONG:
        return add(*(mul(di, *args[:i], *args[i + 1:]) for i, di in enumerate(d)
                     if di is not None))
    before, after = _partial_products(args)
    return add(*(mul(before[i], di, after[i]) for i, di in enumerate(d) if di is not None))


@functools.lru_cache(maxsize=64)
def _partial_products(args: tuple) -> tuple[list, list]:
    """(a₁ ⋯ aᵢ₋₁ and aᵢ₊₁ ⋯ aₖ for each i) of a long product, each built
    from the next shorter one and kept whole: the k partial products of a
    product of k factors take O(k) nodes rather than O(k²)."""
    def whole(product: Expr) -> Expr:
        return shared_adjoint(product) if _is(product, "mul") else product
    before, after = [const(1)], [const(1)]
    for a, b in zip(args[:-1], reversed(args[1:])):
        before.append(whole(mul(before[-1], a)))
        after.append(whole(mul(b, after[-1])))
    return before, after[::-1]


def _pow_vjp(g, node, i):
    x, e = node.args
    if i == 0:
        return unbroadcast(mul(g, e, power(x, sub(e, const(1)))), x.shape)
    return unbroadcast(mul(g, node, log(x)), e.shape)


def _div_vjp(g, node, i):
    a, b = node.args
    if i == 0:
        return unbroadcast(div(g, b), a.shape)
    return unbroadcast(neg(div(mul(g, node), b)), b.shape)


def _given(terms) -> list:
    return [t for t in terms if t is not None]


def _or0(d, like: Expr) -> Expr:
    return zeros(like.shape) if d is None else d


# ------------------------------------------------------------------ table ---

def _infix(symbol: str, prec: int, right_assoc: bool = False) -> Form:
    args = (prec + 1, prec) if right_assoc else (prec, prec + 1)
    return Form("{0}" + symbol + "{1}", prec, args)


_register(Op("add", _broadcast, lambda g, n, i: unbroadcast(g, n.args[i].shape),
             text=Form(" + ", P.ADD), latex=Form(" + ", P.ADD),
             numpy=Form(" + ", P.ADD), nargs=None,
             jvp=lambda n, d: add(*_given(d)),
             rule='sum rule', identity="a broadcast term's adjoint sums the broadcast axes"))
_register(Op("mul", _broadcast, _mul_vjp,
             text=Form(" * ", P.MUL), latex=Form(r" \odot ", P.MUL),
             numpy=Form(" * ", P.MUL), nargs=None,
             jvp=_mul_jvp,
             rule='product rule', identity='<A, B ⊙ C> = <A ⊙ C, B>'))
_register(Op("div", _broadcast, _div_vjp,
             text=_infix(" / ", P.MUL), latex=Form(r"\frac{{{0}}}{{{1}}}"),
             numpy=_infix(" / ", P.MUL), nargs=2,
             jvp=lambda n, d: div(sub(_or0(d[0], n), mul(n, _or0(d[1], n))), n.args[1]),
             rule='quotient rule', identity='<A, B / C> = <A / C, B>'))
_register(Op("pow", _broadcast, _pow_vjp,
             text=_infix(" ** ", P.POW, True),
             latex=Form("{0}^{{{1}}}", P.POW, (P.ATOM, P.LOWEST)),
             numpy=_infix(" ** ", P.POW, True), nargs=2,
             jvp=lambda n, d: add(*_given((mul(n.args[1], power(n.args[0], sub(n.args[1], const(1))), d[0]) if d[0] is not None else None, mul(n, log(n.args[0]), d[1]) if d[1] is not None else None))),
             rule='power rule', identity='<A, c ⊙ B> = <c ⊙ A, B>'))
# Products of matrices are parenthesised against elementwise products (both
# bind as tightly in Python), so `(A @ B) * C` never reads as `A @ (B * C)`.
_register(Op("matmul", _matmul_shape, _matmul_vjp,
             text=Form("{0} @ {1}", P.MUL, P.MUL + 1),
             latex=Form("{0} {1}", P.MUL, P.MUL + 1),
             numpy=Form("{0} @ {1}", P.MUL, P.MUL + 1), nargs=2,
             jvp=lambda n, d: add(*_given((matmul(d[0], n.args[1]) if d[0] is not None else None, matmul(n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='trace cyclicity: <A, BC> = <A Cᵀ, B> = <Bᵀ A, C>'))
_register(Op("transpose", _transpose_shape, lambda g, n, i: transpose(g),
             text=Form("{0}.T", P.POSTFIX, P.POSTFIX),
             latex=Form(r"{0}^\top", P.POSTFIX, P.ATOM),
             numpy=Form("{0}.T", P.POSTFIX, P.POSTFIX),
             jvp=lambda n, d: transpose(d[0]),
             rule='d(Xᵀ) = (dX)ᵀ', identity='transpose of a trace: <A, Bᵀ> = <Aᵀ, B>'))
# A user's named intermediate: the identity, kept as a node so the builders'
# algebra never dissolves it (Y = A @ W + b stays Y inside Y - T).
_register(Op("name", _same, lambda g, n, i: g,
             text=Form(lambda a, p: p["name"]), latex=Form(lambda a, p: p["name"]),
             numpy=Form(lambda a, p: p["name"]),
             jvp=lambda n, d: d[0],
             rule='', identity=''))
# The adjoint of a node that feeds several rules: the identity, kept as a node
# so the products built from it share it (dz3 in dw3 = dz3 a2 and db3 = dz3)
# instead of each flattening its factors.
_register(Op("adjoint", _same, lambda g, n, i: g, text=Form("{0}", P.LOWEST),
             latex=Form("{0}", P.LOWEST), numpy=Form("{0}", P.LOWEST),
             jvp=lambda n, d: d[0],
             rule='', identity=''))
_register(Op("col", _col_shape, lambda g, n, i: reduce_sum(g, 1),
             text=Form("{0}[:, None]", P.POSTFIX, P.POSTFIX),
             latex=Form("{0}", P.MUL, P.MUL),
             numpy=Form("{0}[:, None]", P.POSTFIX, P.POSTFIX),
             jvp=lambda n, d: col(d[0]),
             rule='', identity='<A, v 1ᵀ> = <A 1, v>'))
_register(Op("row", _row_shape, lambda g, n, i: reduce_sum(g, 0),
             text=Form("{0}[None, :]", P.POSTFIX, P.POSTFIX),
             latex=Form(r"{0}^\top", P.POSTFIX, P.ATOM),
             numpy=Form("{0}[None, :]", P.POSTFIX, P.POSTFIX),
             jvp=lambda n, d: row(d[0]),
             rule='', identity='<A, 1 vᵀ> = <1ᵀ A, v>'))


def _latex_sum(a, p):
    axis = p.get("axis")
    if axis == 0:
        return rf"\mathbf{{1}}^\top {a[0]}"
    if axis == 1:
        return rf"{a[0]} \mathbf{{1}}"
    return rf"\operatorname{{sum}}\left({a[0]}\right)"


# The array method: `x.sum(axis=0)` costs a microsecond less than np.sum.
_register(Op("sum", _sum_shape, _sum_vjp, text=call("sum"),
             latex=Form(_latex_sum, P.MUL, P.MUL + 1),
             numpy=Form(lambda a, p: f"{a[0]}.sum({_kwargs(p)[2:]})", P.POSTFIX, P.POSTFIX),
             params=(("axis", None),),
             jvp=lambda n, d: reduce_sum(d[0], n.param("axis")),
             rule='d sum(X) = sum(dX)', identity='<a, sum(B)> = <a 1ᵀ, B>'))
_register(Op("outer", _outer_shape,
             lambda g, n, i: matmul(g, n.args[1]) if i == 0 else matmul(transpose(g), n.args[0]),
             text=call("outer"), latex=Form(r"{0} {1}^\top", P.MUL, P.POSTFIX),
             numpy=call("np.outer"), nargs=2,
             jvp=lambda n, d: add(*_given((outer(d[0], n.args[1]) if d[0] is not None else None, outer(n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='<A, x yᵀ> = <A y, x> = <Aᵀ x, y>'))


def _dims_form(name: str) -> Form:
    return Form(lambda a, p: f"{name}({', '.join(map(str, p['shape']))})")


def _numpy_dims(name: str) -> Form:
    """np.ones((N, D), dtype): in the inputs' precision (float32 stays float32)."""
    return Form(lambda a, p: f"np.{name}(({', '.join(map(str, p['shape']))}"
                + ("," if len(p["shape"]) == 1 else "") + "), dtype)")


def _latex_dims(symbol: str) -> Form:
    return Form(lambda a, p: rf"{symbol}_{{{' '.join(str(d) for d in p['shape'])}}}"
                if len(p["shape"]) == 1 else
                rf"{symbol}_{{{p['shape'][0]} \times {p['shape'][1]}}}")


_register(Op("zeros", _given_shape, None, text=_dims_form("zeros"),
             latex=_latex_dims(r"\mathbf{0}"), numpy=_numpy_dims("zeros"),
             nargs=0, dims=True))
_register(Op("ones", _given_shape, None, text=_dims_form("ones"),
             latex=_latex_dims(r"\mathbf{1}"), numpy=_numpy_dims("ones"),
             nargs=0, dims=True))
_register(Op("eye", _given_shape, None,
             text=Form(lambda a, p: f"eye({p['shape'][0]})"),
             latex=Form(lambda a, p: rf"I_{{{p['shape'][0]}}}"),
             numpy=Form(lambda a, p: f"np.eye({p['shape'][0]}, dtype=dtype)"),
             nargs=0, dims=True))
_register(Op("trace", _square_to("trace", "scalar"),
             lambda g, n, i: mul(g, eye(n.args[0].shape[0])),
             text=call("trace"), latex=latex_call(r"\operatorname{tr}"),
             numpy=call("np.trace"),
             jvp=lambda n, d: func("trace", d[0]),
             rule='d tr(X) = tr(dX)', identity='<a, tr(B)> = <a I, B>'))
_register(Op("det", _square_to("det", "scalar"),
             lambda g, n, i: mul(g, n, transpose(func("inv", n.args[0]))),
             text=call("det"), latex=latex_call(r"\det"),
             numpy=call("np.linalg.det"), domain="spd",
             jvp=lambda n, d: mul(n, func("trace", matmul(func("inv", n.args[0]), d[0]))),
             rule='d det(X) = det(X) tr(X⁻¹ dX)', identity='<a, tr(X⁻¹ dX)> = <a X⁻ᵀ, dX>'))
_register(Op("logdet", _square_to("logdet", "scalar"),
             lambda g, n, i: mul(g, transpose(func("inv", n.args[0]))),
             text=call("logdet"), latex=latex_call(r"\log\det"),
             numpy=Form("np.linalg.slogdet({0})[1]"), domain="spd",
             jvp=lambda n, d: func("trace", matmul(func("inv", n.args[0]), d[0])),
             rule='d log det(X) = tr(X⁻¹ dX)', identity='<a, tr(X⁻¹ dX)> = <a X⁻ᵀ, dX>'))
_register(Op("inv", _square_to("inv", "matrix"),
             lambda g, n, i: neg(matmul(matmul(transpose(n), g), transpose(n))),
             text=call("inv"), latex=Form("{0}^{{-1}}", P.POSTFIX, P.ATOM),
             numpy=call("np.linalg.inv"), domain="spd",
             jvp=lambda n, d: neg(matmul(matmul(n, d[0]), n)),
             rule='d X⁻¹ = −X⁻¹ dX X⁻¹', identity='trace cyclicity: <A, −Y dX Y> = <−Yᵀ A Yᵀ, dX>'))


def elementwise(name: str, vjp: Callable, latex: str | Form = "", numpy: str | Form = "",
                domain: str = "", helper: str = "") -> Op:
    """Register an elementwise function; `vjp(g, x, y)` with y = f(x).

    `latex` and `numpy` are a command or function name (written as a call)
    or a template over the argument `{0}` (default `\\operatorname{name}`, `np.name`);
    `helper` is the source of a NumPy function the generated module defines for it.
    """
    rule = lambda g, n, i: vjp(g, n.args[0], n)  # noqa: E731
    latex, numpy = latex or rf"\operatorname{{{name}}}", numpy or f"np.{name}"
    if isinstance(numpy, str):
        numpy = Form(numpy) if "{0}" in numpy else call(numpy)
    if isinstance(latex, str):
        latex = Form(latex) if "{0}" in latex else latex_call(latex)
    return _register(Op(name, _same, rule, text=call(name), latex=latex,
                        numpy=numpy, domain=domain, elementwise=True, helper=helper,
                        jvp=lambda n, d: vjp(d[0], n.args[0], n),
                        rule=f"chain rule for the elementwise {name}",
                        identity="<A, f'(X) ⊙ dX> = <f'(X) ⊙ A, dX>"))


def _flat(g, x, y):
    """Piecewise constant: the derivative is 0 (no contribution)."""
    return None


elementwise("exp", lambda g, x, y: mul(g, y), r"\exp", "np.exp")
elementwise("log", lambda g, x, y: div(g, x), r"\log", "np.log", "positive")
elementwise("sqrt", lambda g, x, y: div(g, mul(const(2), y)), r"\sqrt{{{0}}}",
            "np.sqrt", "positive")
elementwise("abs", lambda g, x, y: mul(g, func("sign", x)), r"\left|{0}\right|", "np.abs")
elementwise("sign", _flat, r"\operatorname{sign}", "np.sign")
elementwise("sin", lambda g, x, y: mul(g, func("cos", x)), r"\sin", "np.sin")
elementwise("cos", lambda g, x, y: neg(mul(g, func("sin", x))), r"\cos", "np.cos")
elementwise("tanh", lambda g, x, y: mul(g, sub(const(1), power(y, const(2)))),
            r"\tanh", "np.tanh")
elementwise("sigmoid", lambda g, x, y: mul(g, y, sub(const(1), y)), r"\sigma",
            "_sigmoid", helper='''
def _sigmoid(x):
    """σ(x) = 1 / (1 + e^-x), the exponent capped where σ falls below the
    smallest normal number (x < -709 in float64, -88 in float32): never an
    overflow, every normal value to full precision, one exp pass."""
    x = np.asarray(x)
    cap = {np.float32: 88.0, np.float16: 11.0}.get(x.dtype.type, 709.0)
    return 1 / (1 + np.exp(np.minimum(-x, cap)))
''')
elementwise("relu", lambda g, x, y: mul(g, func("step", x)),
            r"\operatorname{relu}", "np.maximum({0}, 0)")
elementwise("step", _flat, r"\mathbf{{1}}\left[{0} > 0\right]", "np.sign(np.maximum({0}, 0))")
elementwise("softplus", lambda g, x, y: mul(g, func("sigmoid", x)),
            r"\operatorname{softplus}", "np.logaddexp(0, {0})")
elementwise("log1p", lambda g, x, y: div(g, add(const(1), x)),
            r"\log\left(1 + {0}\right)", "np.log1p", "positive")

elementwise("tan", lambda g, x, y: mul(g, add(const(1), power(y, const(2)))),
            r"\tan", "np.tan")
elementwise("arcsin", lambda g, x, y: div(g, func("sqrt", sub(const(1), power(x, const(2))))),
            r"\arcsin", "np.arcsin", "unit")
elementwise("arccos",
            lambda g, x, y: neg(div(g, func("sqrt", sub(const(1), power(x, const(2)))))),
            r"\arccos", "np.arccos", "unit")
elementwise("arctan", lambda g, x, y: div(g, add(const(1), power(x, const(2)))),
            r"\arctan", "np.arctan")
elementwise("sinh", lambda g, x, y: mul(g, func("cosh", x)), r"\sinh", "np.sinh")
elementwise("cosh", lambda g, x, y: mul(g, func("sinh", x)), r"\cosh", "np.cosh")
elementwise("expm1", lambda g, x, y: mul(g, add(const(1), y)),
            Form(r"\left(e^{{{0}}} - 1\right)"), "np.expm1")
elementwise("square", lambda g, x, y: mul(const(2), g, x),
            Form(r"{0}^{{\circ 2}}", P.POW, P.ATOM), "np.square")


def _share(mine: Expr, other: Expr, sign: int) -> Expr:
    """The part of the derivative of max (sign 1) or min (sign -1) that goes
    to `mine`: 1 where it is strictly the extremum, 1/2 at a tie, else 0,
    that is (1 + sign(±(mine − other))) / 2."""
    diff = sub(mine, other) if sign > 0 else sub(other, mine)
    if is_zero(diff):
        return const(sympy.Rational(1, 2))
    return div(add(const(1), func("sign", diff)), const(2))


def _extremum(name: str, sign: int) -> Op:
    """max (sign 1) or min (sign -1) of two arrays. At a tie the derivative
    is split evenly between the arguments (as JAX and TensorFlow do), so a
    tie of arguments with equal derivatives has that derivative:
    maximum(x, x) has derivative 1, and a clipped r with r inside the clip
    range has r's. (relu keeps its own rule, step(x): 0 at the kink.)"""
    def rule(g, n, i):
        mine, other = n.args[i], n.args[1 - i]
        return unbroadcast(mul(g, _share(mine, other, sign)), mine.shape)
    def jvp(n, d):
        a, b = n.args
        return add(*_given(mul(_share(x, y, sign), dx)
                           for x, y, dx in ((a, b, d[0]), (b, a, d[1])) if dx is not None))
    return _register(Op(name, _broadcast, rule, text=call(name),
                        latex=latex_call(r"\max" if sign > 0 else r"\min"),
                        numpy=call("np." + name), nargs=2, jvp=jvp,
                        rule=f"d {name}(A, B) = s_A ⊙ dA + s_B ⊙ dB with s_A = "
                             f"(1 + sign({'A − B' if sign > 0 else 'B − A'}))/2 "
                             f"(1 where A wins, 1/2 at a tie)",
                        identity="<G, s_A ⊙ dA> = <s_A ⊙ G, dA>"))


_extremum("maximum", 1)
_extremum("minimum", -1)


def _axis_form(name: str) -> Form:
    r"""`\operatorname{name}_{axis}(x)`."""
    return Form(lambda a, p: rf"\operatorname{{{name}}}"
                + ("" if p.get("axis") is None else f"_{{{p['axis']}}}")
                + rf"\left({a[0]}\right)")


def _softmax_shape(s, p):
    _sum_shape(s, p)
    return s[0]


_register(Op("softmax", _softmax_shape,
             lambda g, n, i: mul(n, sub(g, expand(reduce_sum(mul(g, n), n.param("axis")),
                                                  n.param("axis")))),
             text=call("softmax"), latex=_axis_form("softmax"),
             numpy=Form(lambda a, p: f"_softmax({a[0]}, {p['axis']})"),
             params=(("axis", None),), helper='''
def _softmax(x, axis):
    """exp(x) / sum(exp(x), axis), shifted by the max for stability."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
''',
             jvp=lambda n, d: mul(n, sub(d[0], expand(reduce_sum(mul(n, d[0]), n.param("axis")), n.param("axis")))),
             rule='d softmax(x) = y ⊙ (dx − sum(y ⊙ dx))', identity='<A, y ⊙ (dx − sum(y ⊙ dx))> = <y ⊙ (A − sum(A ⊙ y)), dx>'))
_register(Op("logsumexp", _sum_shape,
             lambda g, n, i: mul(expand(g, n.param("axis")),
                                 exp(sub(n.args[0], expand(n, n.param("axis"))))),
             text=call("logsumexp"), latex=_axis_form("logsumexp"),
             numpy=Form(lambda a, p: f"_logsumexp({a[0]}, {p['axis']})"),
             params=(("axis", None),), helper='''
def _logsumexp(x, axis):
    """log(sum(exp(x), axis)), shifted by the max for stability."""
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))
''',
             jvp=lambda n, d: reduce_sum(mul(exp(sub(n.args[0], expand(n, n.param("axis")))), d[0]), n.param("axis")),
             rule='d logsumexp(x) = sum(softmax(x) ⊙ dx)', identity='<a, sum(s ⊙ dx)> = <a s, dx>'))


def _solve_shape(s, p):
    require_square(s[0], "solve")
    if not s[1] or s[1][0] != s[0][0]:
        raise ShapeError(f"solve(A, B) needs B with {s[0][0]} rows, got {fmt(s[1])}")
    return s[1]


def _solve_vjp(g, node, i):
    a = node.args[0]
    gb = solve(transpose(a), g)
    if i == 1:
        return gb
    return neg(matmul(gb, transpose(node)) if node.ndim == 2 else outer(gb, node))


_register(Op("solve", _solve_shape, _solve_vjp, text=call("solve"),
             latex=Form("{0}^{{-1}} {1}", P.MUL, (P.ATOM, P.MUL + 1)),
             numpy=call("np.linalg.solve"), nargs=2, domain="spd",
             jvp=lambda n, d: solve(n.args[0], sub(_or0(d[1], n), matmul(d[0], n) if d[0] is not None else zeros(n.shape))),
             rule='d(A⁻¹B) = A⁻¹(dB − dA A⁻¹B)', identity='<G, A⁻¹ dB> = <A⁻ᵀ G, dB>'))


def _diag_shape(s, p):
    require_square(s[0], "diag")
    return (s[0][0],)


def _diagm_shape(s, p):
    _vector(s[0], "diag")
    return (s[0][0], s[0][0])


_register(Op("diag", _diag_shape, lambda g, n, i: diag(g), text=call("diag"),
             latex=latex_call(r"\operatorname{diag}"), numpy=call("np.diag"),
             jvp=lambda n, d: diag(d[0]),
             rule='d diag(X) = diag(dX)', identity='<a, diag(B)> = <diag(a), B>'))
_register(Op("diagm", _diagm_shape, lambda g, n, i: diag(g), text=call("diag"),
             latex=latex_call(r"\operatorname{diag}"), numpy=call("np.diag"),
             jvp=lambda n, d: diag(d[0]),
             rule='d diag(x) = diag(dx)', identity='<A, diag(b)> = <diag(A), b>'))


def _scalar(s, p):
    return ()


_register(Op("norm", _scalar, lambda g, n, i: mul(g, div(n.args[0], n)), text=call("norm"),
             latex=Form(r"\left\|{0}\right\|"), numpy=call("np.linalg.norm"),
             jvp=lambda n, d: div(reduce_sum(mul(n.args[0], d[0])), n),
             rule='d‖x‖ = <x, dx> / ‖x‖', identity='<a, <x, dx>/‖x‖> = <a x / ‖x‖, dx>'))
_register(Op("norm1", _scalar, lambda g, n, i: mul(g, func("sign", n.args[0])),
             text=call("norm1"), latex=Form(r"\left\|{0}\right\|_1"),
             numpy=Form("np.abs({0}).sum()"),
             jvp=lambda n, d: reduce_sum(mul(func("sign", n.args[0]), d[0])),
             rule='d‖x‖₁ = <sign(x), dx>', identity='<a, <s, dx>> = <a s, dx>'))


def _kron_shape(s, p):
    a, b = s
    if len(a) != 2 or len(b) != 2:
        raise ShapeError(f"kron needs two matrices, got {fmt(a)} and {fmt(b)}")
    return (a[0] * b[0], a[1] * b[1])


def _unkron_shape(s, p):
    g, other = s
    if len(g) != 2 or len(other) != 2:
        raise ShapeError(f"unkron needs two matrices, got {fmt(g)} and {fmt(other)}")
    out = tuple(sympy.cancel(a / b) for a, b in zip(g, other))
    if any(sympy.fraction(d)[1] != 1 or not d.is_positive for d in out):
        raise ShapeError(f"unkron of {fmt(g)} by {fmt(other)}: the sizes are not multiples")
    return out


_register(Op("kron", _kron_shape,
             lambda g, n, i: (unkron_left if i == 0 else unkron_right)(g, n.args[1 - i]),
             text=call("kron"), latex=Form(r"{0} \otimes {1}", P.MUL, P.MUL + 1),
             numpy=call("np.kron"), nargs=2,
             jvp=lambda n, d: add(*_given((kron(d[0], n.args[1]) if d[0] is not None else None, kron(n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='<G, A ⊗ B> = <unkron(G, B), A>'))
# The adjoints of kron(A, B) = [A_ij B]: unkron_left(G, B)_ij = <G_ij block, B>
# and unkron_right(G, A) = sum_ij A_ij (G_ij block).
_register(Op("unkron_left", _unkron_shape,
             lambda g, n, i: kron(g, n.args[1]) if i == 0 else
             unkron_right(n.args[0], g), text=call("unkron_left"),
             latex=latex_call(r"\operatorname{unkron}_{L}"),
             numpy=call("_unkron_left"), nargs=2, helper='''
def _unkron_left(g, b):
    """The adjoint of kron(a, b) for a: each block of g against b."""
    p, q = b.shape
    return np.einsum("ikjl,kl->ij", g.reshape(g.shape[0] // p, p, g.shape[1] // q, q), b)
''',
             jvp=lambda n, d: add(*_given((func("unkron_left", d[0], n.args[1]) if d[0] is not None else None, func("unkron_left", n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='<A, unkron(G, B)> = <A ⊗ B, G>'))
_register(Op("unkron_right", _unkron_shape,
             lambda g, n, i: kron(n.args[1], g) if i == 0 else
             unkron_left(n.args[0], g), text=call("unkron_right"),
             latex=latex_call(r"\operatorname{unkron}_{R}"),
             numpy=call("_unkron_right"), nargs=2, helper='''
def _unkron_right(g, a):
    """The adjoint of kron(a, b) for b: the blocks of g weighted by a."""
    m, n = a.shape
    return np.einsum("ikjl,ij->kl", g.reshape(m, g.shape[0] // m, n, g.shape[1] // n), a)
''',
             jvp=lambda n, d: add(*_given((func("unkron_right", d[0], n.args[1]) if d[0] is not None else None, func("unkron_right", n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='<B, unkron_r(G, A)> = <A ⊗ B, G>'))
