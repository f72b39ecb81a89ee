"""Reductions over axis tuples with keepdims (sum, mean, max, min,
logsumexp, softmax, log_softmax, var, std) and elementwise operations on
arrays of three and four dimensions (`tests/tensor_corpus.py`).

Every problem's gradient is checked against finite differences, its value
and gradient against `jax.grad` of the same function in jax.numpy, its
Hessian-vector product against differences of the gradient; the generated
NumPy module keeps float32, and the array API (on array-api-strict),
PyTorch and JAX targets give NumPy's numbers. Bad axes and keywords are
refused with line:col.
"""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from corpus_checks import (TARGET_CHECKS, assert_refused, check_differences, close, covering,
                           features, kept, per_target, reference)
from matcalc.targets.unicode import program_unicode
from matcalc.checks.verify import draw, sizes
from matcalc.errors import MatcalcError
from tensor_corpus import CORPUS

NAMES = sorted(CORPUS)
PROBLEMS = kept({name: matcalc.parse(CORPUS[name][0]) for name in NAMES})


def _problem(name):
    return PROBLEMS[name]


def _inputs(problem, seed=0):
    return draw(problem, sizes(problem), np.random.default_rng(seed))


@pytest.fixture(scope="module")
def jax64():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    check_differences(PROBLEMS[name])


@pytest.mark.parametrize("name", NAMES)
def test_value_and_gradient_match_jax(name, jax64):
    problem = _problem(name)
    inputs, value, grads = reference(problem)
    wrt = list(problem.wrt)
    f = CORPUS[name][1]

    def of(*arrays):
        return f({**inputs, **dict(zip(wrt, arrays))})
    want, want_grads = jax64.jit(jax64.value_and_grad(of, argnums=tuple(range(len(wrt)))))(
        *(jax64.numpy.asarray(inputs[w]) for w in wrt))
    close(value, want)
    for w, g in zip(wrt, want_grads):
        close(grads[w], g)


@pytest.mark.parametrize("name", ["layer_norm", "max_pool", "softmax_tuple", "cross_entropy",
                                  "logsumexp_keepdims", "std_ddof", "order4_softmax",
                                  "broadcast_all"])
def test_hessian_vector_product_matches_differences_of_the_gradient(name):
    problem = _problem(name)
    inputs = _inputs(problem)
    module = matcalc.compile(problem, hvp=True)
    rng = np.random.default_rng(5)
    v = {w: rng.standard_normal(np.shape(inputs[w])) for w in problem.wrt}
    h = 1e-5
    up = module.value_and_grad(**{n: x + h * v.get(n, 0) for n, x in inputs.items()})[1]
    down = module.value_and_grad(**{n: x - h * v.get(n, 0) for n, x in inputs.items()})[1]
    got = module.hvp(v if len(v) > 1 else v[problem.wrt[0]], **inputs)
    got = got if isinstance(got, dict) else {problem.wrt[0]: got}
    for w in problem.wrt:
        close(got[w], (up[w] - down[w]) / (2 * h), rtol=1e-6)


def test_each_targets_sample_has_every_feature_of_the_corpus():
    for target in TARGET_CHECKS:
        chosen = covering(PROBLEMS, target)
        assert len(chosen) < len(PROBLEMS)
        assert frozenset().union(*(features(PROBLEMS[n], target) for n in chosen)) \
            == frozenset().union(*(features(p, target) for p in PROBLEMS.values()))
    assert {"logsumexp axis=tuple", "expand_dims axis=tuple"} \
        <= features(PROBLEMS["logsumexp_keepdims"], "torch")


@pytest.mark.parametrize("target, name", per_target(PROBLEMS))
def test_targets_give_the_numpy_modules_numbers(target, name):
    TARGET_CHECKS[target](PROBLEMS[name])


@pytest.mark.parametrize("name", NAMES)
def test_gradients_read_back(name):
    problem = _problem(name)
    for _, g in matcalc.grad(problem):
        assert problem.expr(str(g)) is g


# ------------------------------------------------------------ the rules ---

def test_max_splits_its_derivative_among_ties_as_jax_does(jax64):
    problem = matcalc.problem("sum(max(X, axis=(1, 2)) * w)", X="B x T x D", w="B")
    x = np.zeros((2, 3, 4))
    x[0, 1, 2] = x[0, 2, 3] = 1.0      # two maxima in the first slice, all tied in the second
    w = np.array([3.0, 5.0])
    grads = matcalc.compile(problem).value_and_grad(X=x, w=w)[1]
    want = jax64.grad(lambda a: (jax64.numpy.max(a, axis=(1, 2)) * w).sum())(x)
    close(grads["X"], want)
    assert grads["X"][0, 1, 2] == 1.5 and grads["X"][1, 0, 0] == pytest.approx(5.0 / 12)


def test_keepdims_keeps_the_reduced_axes_as_size_one():
    shapes = {"max(X, axis=(0, 2), keepdims=True)": "1 x T x 1",
              "sum(X, keepdims=True)": "1 x 1 x 1",
              "mean(X, axis=1, keepdims=False)": "B x D",
              "logsumexp(X, axis=-1, keepdims=True)": "B x T x 1",
              "var(X, axis=(1, 2), keepdims=True)": "B x 1 x 1",
              "min(x, keepdims=True)": "1"}
    for text, shape in shapes.items():
        problem = matcalc.parse(f"X: B x T x D\nx: N\nf = sum({text})")
        node = problem.expr(text)
        assert " x ".join(map(str, node.shape)) == shape, text


def test_a_sum_over_inserted_axes_is_the_sum_of_the_original():
    g = matcalc.grad(matcalc.problem("sum(logsumexp(X, axis=2, keepdims=True) * X)",
                                     X="B x T x D"))
    assert "sum(sum" not in str(g["X"]) and "sum(X, axis=2, keepdims=True)" in str(g["X"])


def test_a_named_mean_and_the_mean_var_takes_after_it_are_one_value():
    """var(X) centres X by the mean the user named m on an earlier line, so
    X - m is computed once, forward and backward; the gradient keeps its
    value, and the problem prints as written."""
    text = "\n".join(["X: B x T x D", "W: B x T x D", "m = mean(X, axis=-1, keepdims=True)",
                      "s = var(X, axis=-1, keepdims=True)", "Y = (X - m) / sqrt(s + 1e-5)",
                      "f = sum(Y * W)"])
    problem = matcalc.parse(text)
    g = matcalc.grad(problem)
    assert str(g).count("X - ") == 1 and "X - m" in str(g), str(g)
    code = matcalc.codegen(problem)
    assert code[code.index("def forward"):code.index("def backward")].count("X - ") == 1
    assert matcalc.parse(str(problem)).output is problem.output
    check_differences(problem)


def test_a_value_is_named_only_by_an_earlier_line():
    """h = diag(exp(X)) before loss = exp(X) keeps its exp(X) (a later name
    would be read before its line); a multiple of a variable is no named
    value's multiple."""
    problem = matcalc.parse("X: N x N\nh = diag(exp(X))\nloss = exp(X)")
    assert "h = diag(exp(X))" in str(problem)
    assert matcalc.parse(str(problem)).output is problem.output
    problem = matcalc.parse("X: N x N\nd = 2 * X\nf = sum(exp(-X) * d)")
    assert "f = sum(exp(-X) * d)" in str(problem)


# ------------------------------------------------------------- printing ---

def test_text_latex_and_unicode_write_the_axes():
    problem = matcalc.parse("X: B x T x D\nf = sum(max(X, axis=(1, 2)) ** 2) "
                            "+ sum(logsumexp(X, axis=-1)) + sum(sum(X, axis=(0, 2)) ** 2)")
    g = matcalc.grad(problem)
    text = str(g)
    assert "max(X, axis=(1, 2))" in text and "logsumexp(X, axis=2)" in text
    assert "axis=(2,)" not in text
    latex = g.latex()
    assert r"\max_{1, 2}\left(X\right)" in latex
    assert r"\operatorname{logsumexp}_{2}\left(X\right)" in latex
    assert r"\operatorname{sum}_{0, 2}" in latex
    assert r"\operatorname{where}\left(X = t_{0}, 1, 0\right)" in latex  # no ones(B, T, D)
    unicode = program_unicode(g.program, g.problem)
    assert "∑₀,₂X" in unicode


def test_numpy_code_reduces_with_tuples():
    code = matcalc.codegen(matcalc.problem("sum(max(X, axis=(0, 2)) ** 2)", X="B x T x D"))
    assert "np.max(X, axis=(0, 2))" in code


# ----------------------------------------------------------- bad input ---

BAD = [  # (function, message, column of the caret: the call refused)
    ("sum(X, axis=3)", "axis 3 is out of range for a B x T x D array", 5),
    ("max(X, axis=(0, 0))", "names axis 0 twice", 5),
    ("sum(min(X, axis=(1, -5)))", "axis -5 is out of range", 9),
    ("sum(softmax(X, axis=-1, keepdims=True))", "softmax() has no keyword 'keepdims'", 9),
    ("sum(log_softmax(X, keepdims=False))", "has no keyword 'keepdims'", 9),
    ("sum(sum(X, axis=1, keepdims=1))", "keepdims must be True or False", 9),
    ("sum(var(X, ddof=True))", "ddof must be None or an integer", 9),
    ("sum(cumsum(X))", "cumsum of an array of 3 dimensions needs axis=", 9),
    ("norm(X, ord=1)", "needs axis=", 5),
    ("sum(norm(X, axis=(0, 1)))", "axis is one integer", 9),
    ("sum(triu(x))", "triu needs a matrix or a stack of matrices", 9),
]


@pytest.mark.parametrize("expr, message, column", BAD, ids=[b[0] for b in BAD])
def test_bad_axes_and_keywords_are_refused_with_line_and_column(expr, message, column):
    assert_refused(f"X: B x T x D\nx: N\nf = {expr}\n", 3, column, [message])


def test_sympy_bridge_refuses_arrays_of_three_dimensions():
    pytest.importorskip("sympy")
    from matcalc.bridges import sympy as bridge
    problem = matcalc.problem("sum(max(X, axis=1))", X="B x T x D")
    with pytest.raises(MatcalcError, match="dimensions"):
        bridge.to_sympy(problem.output.args[0])
