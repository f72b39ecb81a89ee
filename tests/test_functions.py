"""Issue 16's first functions (`matcalc/ops/functions.py`): erf (exact GELU),
log2, log10, arcsinh, arccosh, arctanh, logaddexp, clip, pi and e,
eye(N, M), triu/tril, cumsum, comparisons with where, and norm with ord=
and axis=; the activations silu, gelu, elu, leaky_relu and log_sigmoid.

Their derivative rules are checked against finite differences in
`test_ops.py` (CASES); here every code target (NumPy, the array API on
NumPy, array-api-strict, PyTorch and JAX, `--target torch`, `--target jax`)
gives the NumPy target's values and gradients, float32 stays float32, the
text reads back, the notations write them as textbooks do, and bad input
is refused with the fix.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

import matcalc
from matcalc import ops
from matcalc.checks.verify import draw, sizes
from matcalc.errors import DomainError, MatcalcError
from matcalc.targets import numpy_forms
from corpus_checks import (TARGET_CHECKS, assert_refused, check_differences, close, compile_for,
                           covering, kept, per_target, reference)

PROBLEMS = [
    ("sum(x * (1 + erf(x / sqrt(2))) / 2)", {"x": "N"}),
    ("sum(erf(X) * Y)", {"X": "N x D", "Y": "N x D"}),
    ("sum(log2(x) + log10(x)) + x @ arcsinh(x)", {"x": "N"}),
    ("sum(arccosh(y) * arctanh(z))", {"y": "N", "z": "N"}),
    ("sum(logaddexp(X, b) ** 2)", {"X": "N x D", "b": "D"}),
    ("sum(clip(X, lo, hi) ** 2)", {"X": "N x D", "lo": "scalar", "hi": "scalar"}),
    ("pi * sum(x ** 2) + e * sum(x)", {"x": "N"}),
    ("sum(eye(N, D) * X) + sum((eye(D, N) @ X) ** 2)", {"X": "N x D"}),
    ("sum(triu(A, k=1) * B) + sum(tril(A, k=-1) ** 2)", {"A": "N x D", "B": "N x D"}),
    ("sum(cumsum(x) ** 2) + sum(sin(cumsum(X, axis=1)))", {"x": "N", "X": "N x D"}),
    ("sum(where(X <= Y, sin(X), Y ** 2)) + sum(where(X > 0, X, 0.1 * X) ** 2)",
     {"X": "N x D", "Y": "N x D"}),
    ("sum(softmax(where(tril(ones(N, N)) > 0, S, -1e9), axis=1) * V)",
     {"S": "N x N", "V": "N x N"}),
    ("norm(x, ord=1) + norm(X, ord='fro') + norm(X, axis=1) @ norm(X, ord=1, axis=1)",
     {"x": "D", "X": "N x D"}),
    ("sum(silu(X) * gelu(Y)) + sum(log_sigmoid(X - Y))", {"X": "N x D", "Y": "N x D"}),
    ("sum(elu(X) * leaky_relu(Y)) + sum(elu(X, alpha=0.5) ** 2)"
     " + sum(leaky_relu(Y, negative_slope=0.2) ** 3)", {"X": "N x D", "Y": "N x D"}),
]
IDS = [p[0] for p in PROBLEMS]
PARSED = kept({expr: matcalc.problem(expr, **shapes) for expr, shapes in PROBLEMS})
ON_LIBRARIES = [pytest.param(library, name, id=f"{library}-{name}")
                for library in ("numpy", "torch", "jax")
                for name in (IDS if library == "numpy" else covering(PARSED, "array-api"))]


@pytest.mark.parametrize("name", IDS)
def test_gradient_matches_finite_differences(name):
    check_differences(PARSED[name])


@pytest.mark.parametrize("library, name", ON_LIBRARIES)
def test_array_api_module_matches_numpy(library, name):
    """The array-API module on NumPy, PyTorch and JAX arrays (on
    array-api-strict: TARGET_CHECKS) gives the NumPy module's numbers."""
    problem = PARSED[name]
    inputs, value, grads = reference(problem)
    if library == "numpy":
        to, back = np.asarray, np.asarray
    elif library == "torch":
        torch = pytest.importorskip("torch")
        to, back = torch.asarray, lambda y: y.numpy()
    else:
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        to, back = jax.numpy.asarray, np.asarray
    module = compile_for(problem, "array-api")
    got, got_grads = module.value_and_grad(**{n: to(np.asarray(x)) for n, x in inputs.items()})
    close(back(got), value)
    for name in grads:
        close(back(got_grads[name]), grads[name])


@pytest.mark.parametrize("target, name", per_target(PARSED))
def test_targets_give_the_numpy_modules_numbers(target, name):
    TARGET_CHECKS[target](PARSED[name])


@pytest.mark.parametrize("expr, shapes", PROBLEMS, ids=IDS)
def test_text_reads_back(expr, shapes):
    problem = matcalc.problem(expr, **shapes)
    assert problem.expr(str(problem.output.args[0])) is problem.output.args[0]
    for _, g in matcalc.grad(problem):
        assert problem.expr(str(g)) is g


def test_hessians_of_the_new_functions():
    for expr, shapes in [("sum(x * (1 + erf(x / sqrt(2))) / 2)", {"x": "N"}),
                         ("sum(cumsum(x) ** 3)", {"x": "N"}),
                         ("sum(where(x > 0, x ** 3, logaddexp(x, 2 * x)))", {"x": "N"}),
                         ("sum(triu(outer(x, x)) * arcsinh(outer(x, x)))", {"x": "N"})]:
        problem = matcalc.problem(expr, **shapes)
        x = draw(problem, sizes(problem), np.random.default_rng(0))["x"]
        module = matcalc.compile(problem, hessian=True)
        gradient = lambda z: module.value_and_grad(x=z)[1]["x"]  # noqa: E731
        h = 1e-6
        numeric = np.stack([(gradient(x + h * e) - gradient(x - h * e)) / (2 * h)
                            for e in np.eye(x.size)])
        np.testing.assert_allclose(module.hessian(x=x), numeric, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ erf ---

def _erf_helper():
    namespace = {"np": np}
    exec(numpy_forms.HELPERS["erf"], namespace)
    return namespace["_erf"]


def test_numpy_erf_helper_is_accurate_to_the_last_places():
    erf = _erf_helper()
    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-300, 1, 300),
                        -np.geomspace(1e-300, 1, 300), [0.46875, 4.0, 26.0, 30.0]])
    want = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(erf(x) - want) / np.maximum(np.abs(want), 1e-300)) < 1e-15
    assert list(erf(np.array([np.inf, -np.inf, 0.0]))) == [1.0, -1.0, 0.0]
    assert np.isnan(erf(np.nan)) and np.ndim(erf(0.5)) == 0
    assert erf(np.float32([0.1, 3.0])).dtype == np.float32


def test_gelu_gradient_is_the_textbook_one():
    # d/dx x Φ(x) = Φ(x) + x φ(x), with Φ(x) = (1 + erf(x / √2)) / 2
    problem = matcalc.problem("sum(x * (1 + erf(x / sqrt(2))) / 2)", x="N")
    x = np.linspace(-3, 3, 7)
    _, grads = matcalc.compile(problem).value_and_grad(x=x)
    cdf = np.array([(1 + math.erf(v / math.sqrt(2))) / 2 for v in x])
    np.testing.assert_allclose(grads["x"], cdf + x * np.exp(-x ** 2 / 2) / np.sqrt(2 * np.pi),
                               rtol=1e-14)


# ------------------------------------------------------- structure of rules ---

def test_cumsum_adjoint_is_the_reversed_cumsum():
    p = matcalc.problem("cumsum(X, axis=1) * Y", X="N x D", Y="N x D")
    g = matcalc.grad(matcalc.problem("sum(cumsum(X, axis=1) * Y)", X="N x D", Y="N x D"))
    assert str(g["X"]) == "revcumsum(Y, axis=1)"
    assert p.output.args[0].op == "mul"
    Y = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(
        matcalc.compile(g.problem).value_and_grad(X=np.ones((2, 3)), Y=Y)[1]["X"],
        np.cumsum(Y[:, ::-1], axis=1)[:, ::-1])


def test_where_never_differentiates_its_condition():
    g = matcalc.grad(matcalc.problem("sum(where(x > y, x, 0))", x="N", y="N"))
    assert ops.is_zero(g["y"])
    assert str(g["x"]) == "where(x > y, 1, 0)"


def test_masks_are_self_adjoint():
    g = matcalc.grad(matcalc.problem("sum(triu(A, k=1) * B)", A="N x N", B="N x N"))
    assert str(g["A"]) == "triu(B, k=1)"


def test_constants_are_exact_and_a_declared_name_wins():
    p = matcalc.problem("pi * x + e", x="N")
    assert str(p.output.args[0]) == "e + pi * x"
    assert p.expr("e").value == sympy.E and p.expr("pi").value == sympy.pi
    q = matcalc.parse("e: N\nf = sum(e * pi)")
    assert "e" in q.variables
    value, _ = matcalc.compile(q).value_and_grad(e=np.ones(2))
    assert value == pytest.approx(2 * np.pi)


def test_eye_of_two_equal_sizes_is_the_identity():
    p = matcalc.problem("eye(N, N) @ X + eye(N, D)", X="N x D")
    assert str(p.output.args[0]) == "X + eye(N, D)"


def test_arccosh_inputs_are_drawn_above_one():
    p = matcalc.problem("sum(arccosh(X) * Y)", X="N x D", Y="N x D")
    values = draw(p, sizes(p), np.random.default_rng(0))
    assert np.all(values["X"] > 1) and np.any(values["Y"] < 0)


# --------------------------------------------------------------- notation ---

@pytest.mark.parametrize("expr, latex, unicode", [
    ("log2(x) + log10(x)", r"\log_2\left(x\right)", "log2(x)"),
    ("where(x <= y, x, y)", r"x \leq y", "x ≤ y"),
    ("where(x != y, x, y)", r"x \neq y", "x ≠ y"),
    ("sum(triu(A, k=1))", r"\operatorname{triu}_{1}\left(A\right)", "triu(A, k=1)"),
    ("eye(N, M) @ A", r"I_{N \times M}", "eye(N, M)"),
    ("erf(x)", r"\operatorname{erf}\left(x\right)", "erf(x)"),
])
def test_latex_and_unicode(expr, latex, unicode):
    from matcalc.targets.latex import to_latex
    from matcalc.targets.unicode import to_unicode
    p = matcalc.problem(expr, x="N", y="N", A="M x N")
    node = p.output.args[0]
    assert latex in to_latex(node)
    assert unicode in to_unicode(node)


def test_sympy_writes_the_elementwise_functions():
    from matcalc.bridges.sympy import from_sympy, to_sympy
    p = matcalc.problem("sum(erf(x) + arcsinh(x) + log2(x) + arctanh(x))", x="N")
    written = to_sympy(p.output)
    text = str(written)
    assert "erf" in text and "asinh" in text and "log(2)" in text and "atanh" in text
    back = from_sympy(written, p.scope())
    x = np.array([0.2, 0.5])
    evaluate = lambda node: matcalc.checks.verify.evaluate(node, {"x": x, "N": 2})  # noqa: E731
    assert evaluate(back) == pytest.approx(evaluate(p.output), rel=1e-14)


# ------------------------------------------------------------------ errors ---

ERRORS = [  # (function, message, column of the caret)
    ("sum(clip(x, 1))", "clip() takes 3 arguments, got 2", 9),
    ("sum(cumsum(x, dim=0))", "NumPy's name is axis=", 9),
    ("sum(x > 0)", "a comparison is a condition, not a number", 11),
    ("sum((x > 0) * x)", "where(x > 0, x, 0)", 12),
    ("x > 0", "the function f is a comparison", 1),
    ("sum(where(x, x, 0))", "takes a comparison as its condition", 9),
    ("sum(where(0 < x < 1, x, 0))", "comparisons do not chain", 21),
    ("sum(x * 'fro')", "a string is only a keyword value", 13),
    ("norm(X, ord=2)", "ord='fro' is the Frobenius norm", 5),
    ("norm(x, ord='fro')", "a vector's 2-norm is ord=2", 5),
    ("norm(x, ord='nuc')", "not in the language", 5),
    ("sum(cumsum(X))", "needs axis=0 or axis=1", 9),
    ("sum(triu(x))", "triu needs a matrix", 9),
    ("sum(triu(X, k=None))", "k is an integer", 9),
    ("sum(x) * arccosh(0.5)", "arccosh takes x ≥ 1", 14),
    ("logaddexp(x)", "logaddexp() takes 2 arguments, got 1", 5),
]


@pytest.mark.parametrize("function, message, column", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_is_one_line_at_its_place(function, message, column):
    assert_refused(f"x: N\nX: N x D\nf = {function}\n", 3, column, [message], "p.mc")


def test_check_outside_arccosh_domain_names_it():
    p = matcalc.parse("x: N\nf = sum(arccosh(x))")
    with pytest.raises(DomainError) as info:
        matcalc.check(p, inputs={"x": np.array([0.5, 2.0])})
    assert "arccosh: x > 1" in info.value.message


def test_derivation_steps_name_the_new_rules():
    # a condition bound to a name (t0 = x > 0) stays where's condition
    p = matcalc.problem("sum(where(x > 0, cumsum(x), clip(x, -1, 1)) ** 2) + logaddexp(sum(x), 1)",
                        x="N")
    text = str(matcalc.grad(p).derivation())
    assert "t0 = x > 0" in text and "d where(c, a, b) = where(c, da, db)" in text
    assert "<A, cumsum(B)> = <revcumsum(A), B>" in text and "d logaddexp(a, b)" in text
    assert matcalc.check(p).ok


def test_a_condition_may_be_named_but_is_no_number():
    p = matcalc.parse("X: N x D\nmask = X < 0\nf = sum(where(mask, X ** 2, sin(X)))")
    assert matcalc.parse(str(p)).output is p.output and matcalc.check(p).ok
    assert "mask = X < 0" in str(matcalc.grad(p))
    for source, message, place in [
            ("X: N x D\nmask = X < 0\nf = sum(mask * X)", "a comparison is a condition", (3, 9)),
            ("X: N x D\nmask = X < 0", "the function mask is a comparison", (2, 1))]:
        with pytest.raises(MatcalcError) as info:
            matcalc.parse(source)
        assert message in info.value.message and (info.value.line, info.value.column) == place


def test_regression_revcumsum_written_without_its_axis():
    # found by the property tests: revcumsum(X), called by name without
    # axis=, was a node without its axis parameter, which no code target wrote
    p = matcalc.parse("X: N\nloss = sum(revcumsum(X) ** 2)")
    assert str(p.output.args[0]) == "sum(revcumsum(X, axis=0) ** 2)"
    assert matcalc.check(p).ok


def test_where_prints_as_written_in_every_format():
    """The header's written form keeps where's condition a comparison
    (Unicode and LaTeX rebuild the function as written)."""
    p = matcalc.parse("X: N x D\nf = sum(where(X > 0, X, 0.1 * X) ** 2)\nwrt X\n")
    g = matcalc.grad(p)
    assert str(g).startswith("# gradient of f = sum(where(X > 0, X, 0.1 * X) ** 2)")
    assert "where" in p._repr_latex_() and "where" in p.function()
    assert "where" in matcalc.grad(p).latex()


def test_a_leaky_relu_by_where_has_one_where_in_its_gradient():
    """where(k, a, 0) + c where(k, 0, b) is collected to where(k, a, c b),
    and a branch needs no dense ones where the condition gives the shape."""
    g = matcalc.grad(matcalc.problem("sum(where(X > 0, X, 0.1 * X) ** 2)", X="N x D"))
    assert str(g).splitlines()[-1] == "∂f/∂X = where(t0, δt1, 0.1 * δt1)"
    g = matcalc.grad(matcalc.problem("sum(where(X > 0, X, 0.1 * X) @ W)", X="N x D",
                                     W="D x K", wrt="X"))
    assert "ones" not in str(g) and str(g).count("where") == 2  # the header's and dX's
    assert matcalc.check(g.problem).ok


def test_triangle_written_without_k_prints_in_every_notation():
    from matcalc.targets.latex import problem_latex
    from matcalc.targets.unicode import gradient_unicode
    problem = matcalc.problem("sum(triu(X) * tril(X))", X="N x N")
    assert "∑(triu(X) ⊙ tril(X))" in gradient_unicode(matcalc.grad(problem))
    assert r"\operatorname{triu}\left(X\right)" in problem_latex(problem)


@pytest.mark.parametrize("lo, hi", [(-0.5, 0.7), (0.7, -0.5)])
def test_clip_derivatives_hold_for_bounds_in_either_order(lo, hi):
    """clip(x, lo, hi) = min(max(x, lo), hi), as NumPy and PyTorch define it:
    hi where lo > hi, so the derivative is 1 for hi and 0 for x and lo there
    (the rule for lo ≤ hi alone gave -1 for x between the bounds: `check`
    drew such bounds and reported a mismatch)."""
    p = matcalc.parse("x: N\nlo: scalar\nhi: scalar\nf = sum(clip(x, lo, hi) ** 3)\nwrt x, lo, hi")
    module = matcalc.compile(p)
    x = np.array([-1.3, -0.2, 0.3, 1.1])
    value, grads = module.value_and_grad(x=x, lo=lo, hi=hi)
    assert value == pytest.approx(np.sum(np.clip(x, lo, hi) ** 3))

    def f(x=x, lo=lo, hi=hi):
        return np.sum(np.clip(x, lo, hi) ** 3)
    h = 1e-6
    want = {"x": [(f(x=x + h * e) - f(x=x - h * e)) / (2 * h) for e in np.eye(4)],
            "lo": (f(lo=lo + h) - f(lo=lo - h)) / (2 * h),
            "hi": (f(hi=hi + h) - f(hi=hi - h)) / (2 * h)}
    for name, expected in want.items():
        np.testing.assert_allclose(grads[name], expected, rtol=1e-6, atol=1e-9, err_msg=name)
    assert matcalc.check(p, inputs={"x": x, "lo": np.float64(lo), "hi": np.float64(hi)}).ok


# ------------------------------------------------------------ activations ---

ACTIVATIONS = "x: N\nf = sum({} ** 2)"


@pytest.mark.parametrize("target", ["numpy", "array-api", "torch", "jax"])
@pytest.mark.parametrize("function, jax_function", [
    ("leaky_relu(x)", "jax.nn.leaky_relu(x)"),
    ("leaky_relu(x, negative_slope=-0.3)", "jax.nn.leaky_relu(x, -0.3)"),
    ("elu(x, alpha=0.5)", "jax.nn.elu(x, 0.5)"),
    ("silu(x)", "jax.nn.silu(x)"),
    ("gelu(x)", "jax.nn.gelu(x, approximate=False)"),
    ("log_sigmoid(x)", "jax.nn.log_sigmoid(x)")])
def test_activations_at_zero_and_far_out_are_jaxs(target, function, jax_function):
    """Value and gradient on every code target are JAX's, at 0 (the kink:
    leaky_relu's derivative is 1 there, elu's alpha, as in JAX) and at
    ±1000 (finite, no warning: no exp overflows)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    x = np.array([-1000.0, -30.0, -2.5, -1e-3, 0.0, 0.0, 1e-3, 0.7, 40.0, 1000.0])
    f = eval(f"lambda x: jax.numpy.sum({jax_function} ** 2)", {"jax": jax})
    want_value, want_grad = jax.value_and_grad(f)(jax.numpy.asarray(x))
    module = compile_for(matcalc.parse(ACTIVATIONS.format(function)), target)
    to, back = {"torch": (lambda a: __import__("torch").asarray(a), lambda a: a.numpy()),
                "jax": (jax.numpy.asarray, np.asarray)}.get(target, (np.asarray, np.asarray))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        value, grads = module.value_and_grad(x=to(x))
    np.testing.assert_allclose(float(back(value)), float(want_value), rtol=1e-13)
    np.testing.assert_allclose(back(grads["x"]), np.asarray(want_grad), rtol=1e-12, atol=1e-300)


def test_activations_are_written_as_given():
    """A parameter at its default is no parameter; log_sigmoid is the stable
    form log(sigmoid(x)) takes; the gradients are the textbook ones."""
    p = matcalc.parse("x: N\nf = sum(elu(x, alpha=1.0) + elu(x) + leaky_relu(x, "
                      "negative_slope=0.01) + logsigmoid(x) - log(sigmoid(x)))")
    assert str(p.output.args[0]) == "sum(2 * elu(x) + leaky_relu(x))"
    for function, gradient in [
            ("silu(x)", ["t0 = silu(x)", "g0 = sigmoid(x)", "∂f/∂x = g0 + t0 * (1 - g0)"]),
            ("gelu(x)", ["∂f/∂x = (1 + erf(x / sqrt(2))) / 2"
                         " + x * exp(-x ** 2 / 2) / sqrt(2 * pi)"]),
            ("elu(x, alpha=0.5)", ["t0 = elu(x, alpha=0.5)", "∂f/∂x = where(x > 0, 1, 0.5 + t0)"]),
            ("log_sigmoid(x)", ["∂f/∂x = sigmoid(-x)"])]:
        g = matcalc.grad(matcalc.parse(f"x: N\nf = sum({function})"))
        assert str(g).splitlines()[1:] == gradient


@pytest.mark.parametrize("function, message, column", [
    ("sum(elu(x, alpha=x))", "elu(): alpha must be a number, as alpha=1.0", 9),
    ("sum(leaky_relu(x, 0.2))", "write leaky_relu(..., negative_slope=0.2)", 9),
    ("sum(gelu(x, approximate='tanh'))", "gelu() has no keyword 'approximate'", 9),
])
def test_activation_parameters_are_keyword_numbers(function, message, column):
    assert_refused(f"x: N\nf = {function}\n", 2, column, [message], "p.mc")
