"""The operator table: one `Op` entry per operator.

Each entry is the operator's mathematics: its shape rule, its reverse-mode
derivative rule (one line per primitive in the manner of autograd), its
differential for the derivation shown step by step, and what it preserves.
How each output writes an operator is that output's own (`matcalc.targets`):
adding an elementwise function is one `elementwise(...)` line here, plus a
form line in a target only where its default does not fit.
"""

from __future__ import annotations

import functools
from typing import Callable

import sympy

from ..errors import ShapeError
from ..ir.expr import Expr, const, is_op
from ..ir.shapes import fmt, require_square
from .builders import (LONG, _built, add, col, diag, div, exp, eye, func, is_zero, kron, log,
                       matmul, mul, neg, ones, outer, power, row, shared_adjoint, solve, sub,
                       transpose, unkron_left, unkron_right, zeros)
from .axes import expand, expand_dims, reduce_sum, unbroadcast
from .core import Op, _register
from .shape_rules import (_broadcast, _col_shape, _given_shape, _matmul_shape, _outer_shape,
                          _row_shape, _rows_cols, _same, _eye, _square_to, _sum_shape,
                          _transpose_shape, _vector, _expand_dims_shape)

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
    return mul(ones(x.shape), expand(g, node.param("axis")))


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
        return shared_adjoint(product) if is_op(product, "mul") else product
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


def _two_terms(via_first: Callable, via_second: Callable) -> Callable:
    """d f(a, b) = via_first(node, da) + via_second(node, db); an argument
    without a differential contributes no term."""
    def jvp(n, d):
        return add(*_given((via_first(n, d[0]) if d[0] is not None else None,
                            via_second(n, d[1]) if d[1] is not None else None)))
    return jvp


def _product_rule(build: Callable) -> Callable:
    """Product rule for a bilinear `build`: d(a ∘ b) = da ∘ b + a ∘ db."""
    return _two_terms(lambda n, da: build(da, n.args[1]), lambda n, db: build(n.args[0], db))


# ------------------------------------------------------------------ table ---

_register(Op("add", _broadcast, lambda g, n, i: unbroadcast(g, n.args[i].shape), nargs=None,
             jvp=lambda n, d: add(*_given(d)), symmetry="args",
             rule='sum rule', identity="a broadcast term's adjoint sums the broadcast axes"))
_register(Op("mul", _broadcast, _mul_vjp, nargs=None, jvp=_mul_jvp, symmetry="args",
             rule='product rule', identity='<A, B ⊙ C> = <A ⊙ C, B>'))
_register(Op("div", _broadcast, _div_vjp, nargs=2, symmetry="args",
             jvp=lambda n, d: div(sub(_or0(d[0], n), mul(n, _or0(d[1], n))), n.args[1]),
             rule='quotient rule', identity='<A, B / C> = <A / C, B>'))
_register(Op("pow", _broadcast, _pow_vjp, nargs=2, symmetry="args",
             jvp=_two_terms(lambda n, dx: mul(n.args[1], power(n.args[0], sub(n.args[1],
                                                                               const(1))), dx),
                            lambda n, de: mul(n, log(n.args[0]), de)),
             rule='power rule', identity='<A, c ⊙ B> = <c ⊙ A, B>'))
_register(Op("matmul", _matmul_shape, _matmul_vjp, nargs=2, jvp=_product_rule(matmul),
             symmetry="chain",
             rule='product rule', identity='trace cyclicity: <A, BC> = <A Cᵀ, B> = <Bᵀ A, C>'))
_register(Op("transpose", _transpose_shape, lambda g, n, i: transpose(g),
             jvp=lambda n, d: transpose(d[0]), symmetry="args", cheap=True,
             rule='d(Xᵀ) = (dX)ᵀ', identity='transpose of a trace: <A, Bᵀ> = <Aᵀ, B>'))
# A user's named intermediate: the identity, kept as a node so the builders'
# algebra never dissolves it (Y = A @ W + b stays Y inside Y - T).
_register(Op("name", _same, lambda g, n, i: g, jvp=lambda n, d: d[0], symmetry="args"))
# The adjoint of a node that feeds several rules: the identity, kept as a node
# so the products built from it share it (dz3 in dw3 = dz3 a2 and db3 = dz3)
# instead of each flattening its factors.
_register(Op("adjoint", _same, lambda g, n, i: g, jvp=lambda n, d: d[0], symmetry="args"))
_register(Op("col", _col_shape, lambda g, n, i: reduce_sum(g, 1),
             jvp=lambda n, d: col(d[0]), cheap=True, identity='<A, v 1ᵀ> = <A 1, v>'))
# x with axes of size 1 inserted (a view); its adjoint sums them away.
_register(Op("expand_dims", _expand_dims_shape,
             lambda g, n, i: reduce_sum(g, n.param("axis")), params=(("axis", ()),),
             jvp=lambda n, d: expand_dims(d[0], n.param("axis")), cheap=True,
             identity='<A, x with axes of size 1> = <Σ over those axes of A, x>'))
_register(Op("row", _row_shape, lambda g, n, i: reduce_sum(g, 0),
             jvp=lambda n, d: row(d[0]), cheap=True, identity='<A, 1 vᵀ> = <1ᵀ A, v>'))
_register(Op("sum", _sum_shape, _sum_vjp, params=(("axis", None),),
             jvp=lambda n, d: reduce_sum(d[0], n.param("axis")),
             rule='d sum(X) = sum(dX)', identity='<a, sum(B)> = <a 1ᵀ, B>'))
_register(Op("outer", _outer_shape,
             lambda g, n, i: matmul(g, n.args[1]) if i == 0 else matmul(transpose(g), n.args[0]),
             nargs=2, jvp=_product_rule(outer), symmetry="same_args",
             rule='product rule', identity='<A, x yᵀ> = <A y, x> = <Aᵀ x, y>'))
for _name, _dims in (("zeros", _rows_cols), ("ones", _rows_cols), ("eye", _eye)):
    _register(Op(_name, _given_shape, None, nargs=0, dims=_dims, symmetry="always", cheap=True))
_register(Op("trace", _square_to("trace", "scalar"),
             lambda g, n, i: mul(g, eye(n.args[0].shape[0])),
             jvp=lambda n, d: func("trace", d[0]),
             rule='d tr(X) = tr(dX)', identity='<a, tr(B)> = <a I, B>'))
_register(Op("det", _square_to("det", "scalar"),
             lambda g, n, i: mul(g, n, transpose(func("inv", n.args[0]))), domain="spd",
             jvp=lambda n, d: mul(n, func("trace", matmul(func("inv", n.args[0]), d[0]))),
             rule='d det(X) = det(X) tr(X⁻¹ dX)', identity='<a, tr(X⁻¹ dX)> = <a X⁻ᵀ, dX>'))
_register(Op("logdet", _square_to("logdet", "scalar"),
             lambda g, n, i: mul(g, transpose(func("inv", n.args[0]))), domain="spd",
             jvp=lambda n, d: func("trace", matmul(func("inv", n.args[0]), d[0])),
             rule='d log det(X) = tr(X⁻¹ dX)', identity='<a, tr(X⁻¹ dX)> = <a X⁻ᵀ, dX>'))
_register(Op("inv", _square_to("inv", "matrix"),
             lambda g, n, i: neg(matmul(matmul(transpose(n), g), transpose(n))), domain="spd",
             jvp=lambda n, d: neg(matmul(matmul(n, d[0]), n)), symmetry="args",
             rule='d X⁻¹ = −X⁻¹ dX X⁻¹', identity='trace cyclicity: <A, −Y dX Y> = <−Yᵀ A Yᵀ, dX>'))


def elementwise(name: str, vjp: Callable, domain: str = "", params: tuple = ()) -> Op:
    """Register an elementwise function f; `vjp(g, x, y)` with y = f(x) is
    g ⊙ f'(x) (y's `params`, numbers such as elu's alpha, read by
    `core.param`). Each output writes it by its default for the name unless
    it lists a form of its own (`matcalc.targets`)."""
    rule = lambda g, n, i: vjp(g, n.args[0], n)  # noqa: E731
    return _register(Op(name, _same, rule, domain=domain, elementwise=True, symmetry="args",
                        params=params,
                        jvp=lambda n, d: vjp(d[0], n.args[0], n),
                        rule=f"chain rule for the elementwise {name}",
                        identity="<A, f'(X) ⊙ dX> = <f'(X) ⊙ A, dX>"))


def _flat(g, x, y):
    """Piecewise constant: the derivative is 0 (no contribution)."""
    return None


elementwise("exp", lambda g, x, y: mul(g, y))
elementwise("log", lambda g, x, y: div(g, x), "positive")
elementwise("sqrt", lambda g, x, y: div(g, mul(const(2), y)), "positive")
elementwise("abs", lambda g, x, y: mul(g, func("sign", x)))
elementwise("sign", _flat)
elementwise("sin", lambda g, x, y: mul(g, func("cos", x)))
elementwise("cos", lambda g, x, y: neg(mul(g, func("sin", x))))
elementwise("tanh", lambda g, x, y: mul(g, sub(const(1), power(y, const(2)))))
elementwise("sigmoid", lambda g, x, y: mul(g, y, sub(const(1), y)))
elementwise("relu", lambda g, x, y: mul(g, func("step", x)))
elementwise("step", _flat)
elementwise("softplus", lambda g, x, y: mul(g, func("sigmoid", x)))
elementwise("log1p", lambda g, x, y: div(g, add(const(1), x)), "above_minus_one")

elementwise("tan", lambda g, x, y: mul(g, add(const(1), power(y, const(2)))))
elementwise("arcsin",
            lambda g, x, y: div(g, func("sqrt", sub(const(1), power(x, const(2))))), "unit")
elementwise("arccos",
            lambda g, x, y: neg(div(g, func("sqrt", sub(const(1), power(x, const(2)))))),
            "unit")
elementwise("arctan", lambda g, x, y: div(g, add(const(1), power(x, const(2)))))
elementwise("sinh", lambda g, x, y: mul(g, func("cosh", x)))
elementwise("cosh", lambda g, x, y: mul(g, func("sinh", x)))
elementwise("expm1", lambda g, x, y: mul(g, add(const(1), y)))
elementwise("square", lambda g, x, y: mul(const(2), g, x))
# d erf(x) = 2 e^(−x²) / sqrt(pi) dx, with sqrt(pi) the node its text reads as.
elementwise("erf", lambda g, x, y: div(mul(const(2), g, exp(neg(power(x, const(2))))),
                                       func("sqrt", const(sympy.pi))))
# log(2) as the node the text `log(2)` reads as (so a gradient reads back as
# itself), computed in the inputs' floating type.
elementwise("log2", lambda g, x, y: div(g, mul(log(const(2)), x)), "positive")
elementwise("log10", lambda g, x, y: div(g, mul(log(const(10)), x)), "positive")
elementwise("arcsinh", lambda g, x, y: div(g, func("sqrt", add(power(x, const(2)), const(1)))))
elementwise("arccosh", lambda g, x, y: div(g, func("sqrt", sub(power(x, const(2)), const(1)))),
            "above_one")
elementwise("arctanh", lambda g, x, y: div(g, sub(const(1), power(x, const(2)))), "unit")
# d silu(x) = σ(x) + silu(x) (1 − σ(x)), with silu(x) = x σ(x): σ(x) alone, no overflow.
elementwise("silu", lambda g, x, y: mul(g, _sigmoid_slope(func("sigmoid", x), y)))
# The exact GELU x Φ(x) (PyTorch's default, jax.nn.gelu(approximate=False)):
# d gelu(x) = Φ(x) + x φ(x), Φ(x) = (1 + erf(x / sqrt(2))) / 2, φ(x) = e^(−x²/2) / sqrt(2 pi).
elementwise("gelu", lambda g, x, y: mul(g, add(_normal_cdf(x), _normal_pdf_times(x))))


def _sigmoid_slope(s: Expr, y: Expr) -> Expr:
    """σ + y (1 − σ): the derivative of y = x σ(x) from σ and y."""
    return add(s, mul(y, sub(const(1), s)))


def _normal_cdf(x: Expr) -> Expr:
    """Φ(x) = (1 + erf(x / sqrt(2))) / 2."""
    return div(add(const(1), func("erf", div(x, func("sqrt", const(2))))), const(2))


def _normal_pdf_times(x: Expr) -> Expr:
    """x φ(x) = x e^(−x²/2) / sqrt(2 pi)."""
    return div(mul(x, exp(neg(div(power(x, const(2)), const(2))))),
               func("sqrt", mul(const(2), const(sympy.pi))))


def _share(mine: Expr, other: Expr, sign: int) -> Expr:
    """The part of the derivative of max (sign 1) or min (sign -1) that goes
    to `mine`: 1 where it is strictly the extremum, 1/2 at a tie, else 0,
    that is (1 + sign(±(mine − other))) / 2."""
    diff = sub(mine, other) if sign > 0 else sub(other, mine)
    if is_zero(diff):
        return const(sympy.Rational(1, 2))
    return div(add(const(1), _built("sign", diff)), const(2))


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
    return _register(Op(name, _broadcast, rule, nargs=2, jvp=jvp,
                        rule=f"d {name}(A, B) = s_A ⊙ dA + s_B ⊙ dB with s_A = "
                             f"(1 + sign({'A − B' if sign > 0 else 'B − A'}))/2 "
                             f"(1 where A wins, 1/2 at a tie)",
                        identity="<G, s_A ⊙ dA> = <s_A ⊙ G, dA>"))


_extremum("maximum", 1)
_extremum("minimum", -1)


def _softmax_shape(s, p):
    _sum_shape(s, p)
    return s[0]


def _softmax_jvp(n, d):
    """d softmax(x) = y ⊙ (dx − sum(y ⊙ dx)) along the axis, y = softmax(x)."""
    axis = n.param("axis")
    return mul(n, sub(d[0], expand(reduce_sum(mul(n, d[0]), axis), axis)))


def _logsumexp_jvp(n, d):
    """d logsumexp(x) = sum(softmax(x) ⊙ dx) along the axis."""
    axis = n.param("axis")
    return reduce_sum(mul(exp(sub(n.args[0], expand(n, axis))), d[0]), axis)


_register(Op("softmax", _softmax_shape,
             lambda g, n, i: mul(n, sub(g, expand(reduce_sum(mul(g, n), n.param("axis")),
                                                  n.param("axis")))),
             params=(("axis", None),), jvp=_softmax_jvp,
             rule='d softmax(x) = y ⊙ (dx − sum(y ⊙ dx))',
             identity='<A, y ⊙ (dx − sum(y ⊙ dx))> = <y ⊙ (A − sum(A ⊙ y)), dx>'))
_register(Op("logsumexp", _sum_shape,
             lambda g, n, i: mul(expand(g, n.param("axis")),
                                 exp(sub(n.args[0], expand(n, n.param("axis"))))),
             params=(("axis", None),), jvp=_logsumexp_jvp,
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


def _solve_jvp(n, d):
    """d(A⁻¹B) = A⁻¹(dB − dA A⁻¹B)."""
    db = _or0(d[1], n)
    return solve(n.args[0], sub(db, matmul(d[0], n) if d[0] is not None else zeros(n.shape)))


_register(Op("solve", _solve_shape, _solve_vjp, nargs=2, domain="spd", jvp=_solve_jvp,
             symmetry="chain",
             rule='d(A⁻¹B) = A⁻¹(dB − dA A⁻¹B)', identity='<G, A⁻¹ dB> = <A⁻ᵀ G, dB>'))


def _diag_shape(s, p):
    require_square(s[0], "diag")
    return (s[0][0],)


def _diagm_shape(s, p):
    _vector(s[0], "diag")
    return (s[0][0], s[0][0])


_register(Op("diag", _diag_shape, lambda g, n, i: diag(g), jvp=lambda n, d: diag(d[0]),
             rule='d diag(X) = diag(dX)', identity='<a, diag(B)> = <diag(a), B>'))
_register(Op("diagm", _diagm_shape, lambda g, n, i: diag(g), jvp=lambda n, d: diag(d[0]),
             symmetry="always",
             rule='d diag(x) = diag(dx)', identity='<A, diag(b)> = <diag(A), b>'))


def _scalar(s, p):
    return ()


_register(Op("norm", _scalar, lambda g, n, i: mul(g, div(n.args[0], n)),
             jvp=lambda n, d: div(reduce_sum(mul(n.args[0], d[0])), n),
             rule='d‖x‖ = <x, dx> / ‖x‖', identity='<a, <x, dx>/‖x‖> = <a x / ‖x‖, dx>'))
_register(Op("norm1", _scalar, lambda g, n, i: mul(g, func("sign", n.args[0])),
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
             nargs=2, jvp=_product_rule(kron), symmetry="args",  # (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ
             rule='product rule', identity='<G, A ⊗ B> = <unkron(G, B), A>'))
# The adjoints of kron(A, B) = [A_ij B]: unkron_left(G, B)_ij = <G_ij block, B>
# and unkron_right(G, A) = sum_ij A_ij (G_ij block); symmetric for symmetric
# G and B (G_ji block = G_ij blockᵀ) or G and A.
_register(Op("unkron_left", _unkron_shape,
             lambda g, n, i: kron(g, n.args[1]) if i == 0 else unkron_right(n.args[0], g),
             nargs=2, jvp=_product_rule(functools.partial(func, "unkron_left")), symmetry="args",
             rule='product rule', identity='<A, unkron(G, B)> = <A ⊗ B, G>'))
_register(Op("unkron_right", _unkron_shape,
             lambda g, n, i: kron(n.args[1], g) if i == 0 else unkron_left(n.args[0], g),
             nargs=2, jvp=_product_rule(functools.partial(func, "unkron_right")), symmetry="args",
             rule='product rule', identity='<B, unkron_r(G, A)> = <A ⊗ B, G>'))
