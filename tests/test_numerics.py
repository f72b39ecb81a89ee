"""Numerically sound generated code.

* Stable forms: sigmoid, softplus, log(sigmoid(x)) and log(1 - sigmoid(x)),
  log(1 + exp(x)) and 1 / (1 + exp(-x)) as a user writes them, logsumexp
  and softmax (by axis), log(1 + x) (→ log1p) and exp(x) − 1 (→ expm1): at
  inputs with |x| up to 1e3 the generated value and gradient are finite
  wherever the true ones are, agree with the true ones (50-digit mpmath) to
  1e-12 relative, and agree with the naive NumPy formula wherever that is
  finite. inv(A) @ B is a solve where the inverse itself is not needed.
* Precision: float32 inputs give float32 values and gradients (no silent
  upcast), float64 gives float64, for every example and a set of problems
  that touch each kind of generated code (constant arrays, helpers, linear
  algebra, second-order functions).
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest

import matcalc
from matcalc.checks.verify import draw, sizes

from conftest import EXAMPLES

mpmath.mp.dps = 50

LARGE = np.array([-1000.0, -745.0, -709.0, -100.0, -50.0, -37.0, -30.0, -20.0, -1.0, -1e-8,
                  -1e-300, 0.0, 1e-300, 1e-8, 1.0, 20.0, 30.0, 37.0, 50.0, 100.0, 700.0,
                  709.0, 710.0, 1000.0])
NEAR_MINUS_ONE = np.array([-0.999999, -0.5, -1e-8, -1e-300, 0.0, 1e-300, 1e-12, 1e-8, 0.5,
                           1.0, 100.0, 1000.0])

RTOL, ATOL = 1e-12, 1e-15


def _sig(x):
    return 1 / (1 + mpmath.exp(-x))


# (written by the user, inputs, true value, true derivative, naive NumPy value)
ELEMENTWISE = {
    "sigmoid(x)": (LARGE, _sig, lambda x: _sig(x) * (1 - _sig(x)),
                   lambda x: 1 / (1 + np.exp(-x))),
    "1 / (1 + exp(-x))": (LARGE, _sig, lambda x: _sig(x) * (1 - _sig(x)),
                          lambda x: 1 / (1 + np.exp(-x))),
    "softplus(x)": (LARGE, lambda x: mpmath.log(1 + mpmath.exp(x)), _sig,
                    lambda x: np.log(1 + np.exp(x))),
    "log(1 + exp(x))": (LARGE, lambda x: mpmath.log(1 + mpmath.exp(x)), _sig,
                        lambda x: np.log(1 + np.exp(x))),
    "log(exp(x) + 1)": (LARGE, lambda x: mpmath.log(1 + mpmath.exp(x)), _sig,
                        lambda x: np.log(np.exp(x) + 1)),
    "log(sigmoid(x))": (LARGE, lambda x: mpmath.log(_sig(x)), lambda x: 1 - _sig(x),
                        lambda x: np.log(1 / (1 + np.exp(-x)))),
    "-log(sigmoid(-x))": (LARGE, lambda x: -mpmath.log(_sig(-x)), _sig,
                          lambda x: -np.log(1 / (1 + np.exp(x)))),
    "log(1 - sigmoid(x))": (LARGE, lambda x: mpmath.log(_sig(-x)), lambda x: -_sig(x),
                            lambda x: np.log(1 - 1 / (1 + np.exp(-x)))),
    "log(1 + x)": (NEAR_MINUS_ONE, lambda x: mpmath.log(1 + x), lambda x: 1 / (1 + x),
                   lambda x: np.log(1 + x)),
    "exp(x) - 1": (LARGE, lambda x: mpmath.exp(x) - 1, mpmath.exp, lambda x: np.exp(x) - 1),
    "tanh(x)": (LARGE, mpmath.tanh, lambda x: 1 - mpmath.tanh(x) ** 2, np.tanh),
    # the same forms with float literals, as people write them
    "log(1. + exp(x))": (LARGE, lambda x: mpmath.log(1 + mpmath.exp(x)), _sig,
                         lambda x: np.log(1 + np.exp(x))),
    "1.0 / (1.0 + exp(-x))": (LARGE, _sig, lambda x: _sig(x) * (1 - _sig(x)),
                              lambda x: 1 / (1 + np.exp(-x))),
    "log(1.0 + x)": (NEAR_MINUS_ONE, lambda x: mpmath.log(1 + x), lambda x: 1 / (1 + x),
                     lambda x: np.log(1 + x)),
    "exp(x) - 1.0": (LARGE, lambda x: mpmath.exp(x) - 1, mpmath.exp,
                     lambda x: np.exp(x) - 1),
    "log(1.0 - sigmoid(x))": (LARGE, lambda x: mpmath.log(_sig(-x)), lambda x: -_sig(x),
                              lambda x: np.log(1 - 1 / (1 + np.exp(-x)))),
}


def _finite(value) -> bool:
    return abs(value) < 1.7976931348623157e308


def _close(got, want) -> bool:
    return abs(got - float(want)) <= RTOL * abs(float(want)) + ATOL


@pytest.mark.parametrize("written", list(ELEMENTWISE))
def test_stable_elementwise_forms(written):
    xs, value, derivative, naive = ELEMENTWISE[written]
    module = matcalc.compile(f"x: N\nf = {written}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, grads = module.value_and_grad(np.ones_like(xs), x=xs)
        reference = naive(xs)
    for k, x in enumerate(xs):
        mx = mpmath.mpf(float(x))
        v, d = value(mx), derivative(mx)
        where = f"{written} at x = {x:g}"
        if _finite(v):
            assert np.isfinite(got[k]), f"{where}: value {got[k]}, true {mpmath.nstr(v, 17)}"
            assert _close(got[k], v), f"{where}: value {got[k]!r}, true {mpmath.nstr(v, 17)}"
        if _finite(v) and _finite(d):
            assert np.isfinite(grads["x"][k]), f"{where}: gradient {grads['x'][k]}"
            assert _close(grads["x"][k], d), \
                f"{where}: gradient {grads['x'][k]!r}, true {mpmath.nstr(d, 17)}"
        if np.isfinite(reference[k]):
            # within the naive form's own rounding error (1 - sigmoid(20) cancels)
            slack = 2 * abs(reference[k] - float(v)) if _finite(v) else 0.0
            assert abs(got[k] - reference[k]) <= max(1e-9 * max(1.0, abs(reference[k])), slack), \
                f"{where}: {got[k]!r} but the naive form gives {reference[k]!r}"


def test_user_written_forms_become_the_stable_functions():
    """The rewrites the issue names, visible in the derived graph."""
    for written, want in [("log(1 + exp(x))", "softplus(x)"),
                          ("1 / (1 + exp(-x))", "sigmoid(x)"),
                          ("log(1 + x)", "log1p(x)"),
                          ("exp(x) - 1", "expm1(x)"),
                          ("log(sigmoid(x))", "-softplus(-x)"),
                          ("log(1.0 + exp(x))", "softplus(x)"),
                          ("1. / (1. + exp(-x))", "sigmoid(x)"),
                          ("log(1.0 + x)", "log1p(x)"),
                          ("exp(x) - 1.0", "expm1(x)"),
                          ("log(1 - sigmoid(x))", "-softplus(x)"),
                          ("log(1.0 - sigmoid(x))", "-softplus(x)")]:
        p = matcalc.parse(f"x: N\nf = {written}\n")
        assert str(p.output.args[0]) == want, (written, str(p.output.args[0]))
        source = matcalc.codegen(p)
        assert "np.log(1 +" not in source and "np.exp(x) - 1" not in source


def _logsumexp_true(row):
    m = max(row)
    return m + mpmath.log(sum(mpmath.exp(r - m) for r in row))


LSE_CASES = [
    np.array([1000.0, 999.0, -1000.0, 0.0]),
    np.array([-1000.0, -1000.5, -999.0]),
    np.array([700.0, 710.0, 720.0, 1000.0]),
    np.array([1e-300, -1e-300, 0.0]),
    np.array([-745.0, -746.0]),
]


@pytest.mark.parametrize("x", LSE_CASES, ids=range(len(LSE_CASES)))
@pytest.mark.parametrize("written", ["logsumexp(x)", "logsumexp(x, axis=0)",
                                     "sum(softmax(x) * w)", "sum(softmax(x, axis=-1) * w)"])
def test_logsumexp_and_softmax_at_large_inputs(x, written):
    w = np.linspace(-1.0, 2.0, len(x))
    module = matcalc.compile(f"x: N\nw: N\nf = {written}\n")
    value, grads = module.value_and_grad(x=x, w=w)
    mx = [mpmath.mpf(float(v)) for v in x]
    lse = _logsumexp_true(mx)
    s = [mpmath.exp(v - lse) for v in mx]
    if written.startswith("logsumexp"):
        want_v, want_g = lse, s
    else:
        want_v = sum(si * wi for si, wi in zip(s, w))
        want_g = [si * (wi - want_v) for si, wi in zip(s, w)]
    assert np.isfinite(value) and _close(value, want_v), (value, want_v)
    assert np.all(np.isfinite(grads["x"]))
    for got, want in zip(grads["x"], want_g):
        assert _close(got, want), (grads["x"], want_g)


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_logsumexp_and_softmax_of_matrices_by_axis(axis):
    X = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -999.0, -998.0], [710.0, 709.0, 1e-300]])
    W = np.arange(9.0).reshape(3, 3) / 9
    for written in [f"sum(logsumexp(X, axis={axis}) * c)", f"sum(softmax(X, axis={axis}) * W)"]:
        module = matcalc.compile(f"X: N x N\nW: N x N\nc: N\nf = {written}\n")
        c = np.array([0.5, -1.0, 2.0])
        value, grads = module.value_and_grad(X=X, W=W, c=c)
        assert np.isfinite(value) and np.all(np.isfinite(grads["X"])), written
        # against the same function in 50 digits
        ax = axis % 2
        rows = X if ax == 1 else X.T
        lse = [_logsumexp_true([mpmath.mpf(float(v)) for v in r]) for r in rows]
        if written.startswith("sum(logsumexp"):
            want = sum(l * ci for l, ci in zip(lse, c))
        else:
            Wr = W if ax == 1 else W.T
            want = sum(mpmath.exp(mpmath.mpf(float(v)) - lse[i]) * Wr[i][j]
                       for i, r in enumerate(rows) for j, v in enumerate(r))
        assert _close(value, want), (written, value, want)


def test_logistic_loss_at_large_margins():
    X = np.array([[1.0, 2.0], [-3.0, 1.0], [0.5, -0.5]])
    y = np.array([1.0, -1.0, 1.0])
    w = np.array([400.0, -300.0])                           # margins of about ±1000
    module = matcalc.compile(EXAMPLES.joinpath("logistic.mc").read_text("utf-8"))
    value, grads = module.value_and_grad(X=X, y=y, w=w)
    z = -y * (X @ w)
    want = sum(mpmath.log(1 + mpmath.exp(mpmath.mpf(float(v)))) for v in z)
    assert np.isfinite(value) and _close(value, want)
    want_g = -X.T @ (y * np.array([float(_sig(mpmath.mpf(float(v)))) for v in z]))
    np.testing.assert_allclose(grads["w"], want_g, rtol=1e-12)


def test_cross_entropy_written_by_hand_is_finite_at_large_logits():
    """-(y log σ(z) + (1 − y) log(1 − σ(z))) is finite for |z| up to 1e3
    (its true value is; naively it is inf or nan)."""
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    y = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    module = matcalc.compile("z: N\ny: N\n"
                             "f = -sum(y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z)))\n")
    value, grads = module.value_and_grad(z=z, y=y)
    want = -sum(yi * mpmath.log(_sig(mpmath.mpf(zi))) + (1 - yi) * mpmath.log(_sig(-mpmath.mpf(zi)))
                for zi, yi in zip(z, y))
    assert np.isfinite(value) and _close(value, want), (value, want)
    want_g = np.array([float(_sig(mpmath.mpf(zi)) - yi) for zi, yi in zip(z, y)])
    np.testing.assert_allclose(grads["z"], want_g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("written", ["log(sum(exp(x)))", "exp(x) / sum(exp(x))",
                                     "exp(x - logsumexp(x))"])
def test_user_written_logsumexp_and_softmax_are_finite(written):
    """The naive spellings of logsumexp and softmax are finite at |x| = 1e3,
    where the true values are."""
    x = np.array([1000.0, 999.0, -1000.0])
    p = matcalc.parse(f"x: N\nf = {written}\n")
    module = matcalc.compile(p)
    dout = [np.array([1.0, -2.0, 0.5])] if p.output.shape else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, grads = module.value_and_grad(*dout, x=x)
    assert np.all(np.isfinite(value)), f"{written} = {value}"
    assert np.all(np.isfinite(grads["x"])), f"d{written} = {grads['x']}"


@pytest.mark.parametrize("guarded, slope", [
    ("where(x > 0, log(x), 0)", lambda x: np.where(x > 0, 1 / np.where(x > 0, x, 1), 0)),
    ("where(x > 0, sqrt(x), -x)", lambda x: np.where(x > 0, 0.5 / np.sqrt(np.abs(x) + (x == 0)),
                                                     -1)),
    ("where(x <= 0, 0, x * log(x))", lambda x: np.where(x > 0, 1 + np.log(np.where(x > 0, x, 1)),
                                                        0)),
])
@pytest.mark.parametrize("target", ["numpy", "array-api"])
def test_a_guarding_where_guards_the_gradient(guarded, slope, target):
    """where(x > 0, log(x), 0), written to keep log from x ≤ 0, has the
    slope of the branch taken: 0 where x ≤ 0 (autodiff's mask ⊙ (1 / x)
    gives 0 · ∞ = NaN at x = 0, and NaN where log(x) is NaN)."""
    x = np.array([-2.0, -1e-300, 0.0, 1e-300, 0.5, 3.0])
    module = matcalc.compile(f"x: N\nf = sum({guarded})\n", target=target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                # the forward pass meets log(0)
        _, grads = module.value_and_grad(x=x)
    np.testing.assert_allclose(grads["x"], slope(x), rtol=1e-14)


def test_a_product_the_user_wrote_keeps_numpys_value():
    """where(x > 0, x, 0) * log(x) is NaN where x < 0, as NumPy has it (only a
    gradient's masks take the factors into their branch)."""
    x = np.array([-1.0, 2.0, 3.0])
    module = matcalc.compile("x: N\nf = sum(where(x > 0, x, 0) * log(x))\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, grads = module.value_and_grad(x=x)
        want = np.sum(np.where(x > 0, x, 0) * np.log(x))
    assert np.isnan(value) and np.isnan(want)
    np.testing.assert_allclose(grads["x"][1:], 1 + np.log(x[1:]))


@pytest.mark.parametrize("text", [
    "A: N x N\nb: N\nw: N\nf = w @ (inv(A) @ b)\nwrt w",
    "A: N x N\nB: N x K\nW: N x K\nf = sum(W * (inv(A) @ B))\nwrt W",
    "A: N x N\nb: N\nf = sum(solve(A, b))",
])
def test_inverse_products_are_solves(text):
    source = matcalc.codegen(text)
    assert "np.linalg.solve(" in source and "np.linalg.inv(" not in source, source
    assert matcalc.check(text).ok


def test_solve_is_accurate_for_an_ill_conditioned_matrix():
    """w @ (inv(A) @ b) through the module matches the 50-digit value for
    cond(A) ~ 1e10 as well as np.linalg.solve does."""
    n = 6
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ np.diag(np.logspace(0, -10, n)) @ Q.T
    b, w = rng.standard_normal(n), rng.standard_normal(n)
    module = matcalc.compile("A: N x N\nb: N\nw: N\nf = w @ (inv(A) @ b)\nwrt w")
    value, grads = module.value_and_grad(A=A, b=b, w=w)
    exact = mpmath.lu_solve(mpmath.matrix(A.tolist()), mpmath.matrix(b.tolist()))
    want = [float(v) for v in exact]
    err_module = np.max(np.abs(grads["w"] - want))
    err_solve = np.max(np.abs(np.linalg.solve(A, b) - want))
    assert err_module <= 10 * err_solve + 1e-300


# --------------------------------------------------------------- precision ---

PRECISION_PROBLEMS = [p.read_text("utf-8") for p in sorted(EXAMPLES.glob("*.mc"))] + [
    "A: N x N spd\nb: N\nf = sum(solve(A, b)) + logdet(A) + det(A) + trace(inv(A))\n",
    "x: N\nlam: scalar\nf = logsumexp(x) + sum(softmax(x) * x) + lam * norm(x) + norm1(x)\n",
    "X: N x D\nf = sum(kron(X, X)) + sum(unkron_left(kron(X, X), X) ** 2)\n",
    "X: N x D\nw: D\nf = sum(sigmoid(X @ w)) + sum(softplus(X @ w)) + mean(relu(X))"
    " + sum(step(X) * X)\n",
    "x: N\nf = sum(ones(N) * x) + sum(eye(N) * outer(x, x)) + sum(diag(x)) + sum(zeros(N) + x)\n",
    "x: N\nf = sum(log1p(x ** 2) + expm1(x) + sqrt(x ** 2 + 1) + maximum(x, 0.5) + minimum(x, 0))\n",
    "S: N x N spd\nX: N x D\nf = sum(solve(S, X)) + sum(inv(S)) + sum(S * (X @ X.T))\nwrt S, X\n",
    "x: N\nf = sum(x ** 2) / N + mean(x) + sum(x ** 0.5 * 0) + sum(abs(x) ** 1.5)\n",
    "x: N\ny: D\nf = outer(x, y) * 2 + x[:, None] - y[None, :] / D\n",
    "X: N x D\nf = mean(X, axis=0) * 3 + sum(X, axis=0) / N\n",
    "A: N x N\nf = trace(A @ A.T) + sum(diag(A)) * 0.5\n",
]


def _inputs(p, dtype, python_scalars=False):
    values = draw(p, sizes(p), np.random.default_rng(0))
    out = {}
    for name, v in values.items():
        if p.variables[name].domain == "int":  # indices stay integers
            out[name] = v
        elif np.ndim(v):
            out[name] = np.asarray(v, dtype=dtype)
        else:
            out[name] = float(v) if python_scalars else dtype(v)
    return out


def _run(module, p, inputs, dtype):
    value, _ = module.forward(*(inputs[n] for n in module.INPUTS))
    dout = [np.ones(np.shape(value), dtype=dtype)] if p.output.shape else []
    return module.value_and_grad(*dout, **inputs)


@pytest.mark.parametrize("text", PRECISION_PROBLEMS, ids=range(len(PRECISION_PROBLEMS)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_precision_is_kept(text, dtype):
    p = matcalc.parse(text)
    module = matcalc.compile(p)
    inputs = _inputs(p, dtype)
    value, grads = _run(module, p, inputs, dtype)
    assert np.asarray(value).dtype == dtype, f"value is {np.asarray(value).dtype}"
    for name, g in grads.items():
        assert np.asarray(g).dtype == dtype, f"d{name} is {np.asarray(g).dtype}"
    if dtype is np.float32:   # and the float32 numbers are the float64 ones, rounded
        want_v, want_g = _run(module, p, _inputs(p, np.float64), np.float64)
        np.testing.assert_allclose(np.asarray(value, dtype=float), want_v, rtol=2e-3, atol=2e-3)
        for name in grads:
            np.testing.assert_allclose(np.asarray(grads[name], dtype=float), want_g[name],
                                       rtol=2e-3, atol=2e-3 * max(1, np.max(np.abs(want_g[name]))))


@pytest.mark.parametrize("text", PRECISION_PROBLEMS, ids=range(len(PRECISION_PROBLEMS)))
def test_float32_arrays_with_python_float_scalars_stay_float32(text):
    p = matcalc.parse(text)
    if not any(v.shape for v in p.variables.values()):
        pytest.skip("no array input")
    module = matcalc.compile(p)
    value, grads = _run(module, p, _inputs(p, np.float32, python_scalars=True), np.float32)
    assert np.asarray(value).dtype == np.float32
    for name, g in grads.items():
        assert np.asarray(g).dtype == np.float32, f"d{name} is {np.asarray(g).dtype}"


@pytest.mark.parametrize("text, wrt", [
    (EXAMPLES.joinpath("logistic.mc").read_text("utf-8"), "w"),
    ("X: N x D\nf = sum(exp(X))\n", "X"),                       # an operator-form Hessian
    ("X: N x D\nA: D x D\nf = trace(X @ A @ X.T)\n", "X"),      # a Kronecker-form Hessian
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_precision_of_second_order_functions(text, wrt, dtype):
    p = matcalc.parse(text)
    module = matcalc.compile(p, hessian=wrt, hvp=True, jacobian=True)
    inputs = _inputs(p, dtype)
    assert np.asarray(module.hessian(**inputs)).dtype == dtype
    hv = module.hvp(np.ones_like(inputs[wrt]) if len(p.wrt) == 1 else
                    {n: np.ones_like(inputs[n]) for n in p.wrt}, **inputs)
    for h in (hv.values() if isinstance(hv, dict) else [hv]):
        assert np.asarray(h).dtype == dtype
    jac = module.jacobian(**inputs)
    for j in (jac.values() if isinstance(jac, dict) else [jac]):
        assert np.asarray(j).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_exact_and_never_overflows(dtype):
    """σ is 1 / (1 + e^-x) with the exponent capped: no overflow warning at
    |x| = 1e3 in either precision, σ to full relative precision down to the
    smallest normal number, σ(1 - σ) within an ulp of 1."""
    module = matcalc.compile("x, c: N\nf = sum(sigmoid(x) * c)\n")
    x = np.array([-1000.0, -100.0, -40.0, -30.0, -1.0, 0.0, 2.0, 40.0, 1000.0], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grads = module.value_and_grad(x=x, c=np.ones_like(x))
    assert grads["x"].dtype == grads["c"].dtype == dtype
    info = np.finfo(dtype)
    for xi, si, di in zip(x, grads["c"], grads["x"]):
        s = _sig(mpmath.mpf(float(xi)))
        if s > info.tiny:
            assert abs(float(si) - float(s)) <= 2 * info.eps * float(s), f"σ({xi})"
        assert abs(float(di) - float(s * (1 - s))) <= 2 * info.eps, f"σ'({xi})"


def test_log_of_a_power_of_sigmoid_is_finite_in_the_tail():
    # log(σ(x)²) at x = -40 is -80: σ(-40) = 4.2e-18 must not round to 0
    module = matcalc.compile("x: N\nf = sum(log(sigmoid(x) ** 2))\n")
    value, grads = module.value_and_grad(x=np.array([-40.0, -100.0, 0.0]))
    np.testing.assert_allclose(value, -80 - 200 - 2 * np.log(2), rtol=1e-12)
    np.testing.assert_allclose(grads["x"], [2.0, 2.0, 1.0], rtol=1e-12)
