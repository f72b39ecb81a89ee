"""Ties in maximum and minimum: the derivative is split evenly between tied
arguments (as in JAX and TensorFlow), so a tie of two arguments with equal
derivatives has that derivative; relu keeps its subgradient step(x).

Every expected value is plain NumPy: central differences of the function as
written, or the even split (a′ + b′) / 2 computed by hand at an exact tie.
"""

from __future__ import annotations

import numpy as np
import pytest

import matcalc

from test_steps import _check

PPO = """logp, logq, Adv: N
r = exp(logp - logq)
rc = minimum(maximum(r, 1 - 0.2), 1 + 0.2)
loss = -mean(minimum(r * Adv, rc * Adv))
wrt logp
"""


def _ppo_numpy(logp, logq, adv):
    r = np.exp(logp - logq)
    rc = np.minimum(np.maximum(r, 0.8), 1.2)
    return -np.mean(np.minimum(r * adv, rc * adv))


def _central(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def _ppo_inputs(seed, n=7):
    """Ratios r = exp(logp − logq) inside the clip range (0.8, 1.2), where
    minimum(r Adv, rc Adv) ties exactly, as it does in most of training."""
    rng = np.random.default_rng(seed)
    logq = rng.standard_normal(n)
    logp = logq + rng.uniform(np.log(0.85), np.log(1.15), n)
    return logp, logq, rng.standard_normal(n)


@pytest.mark.parametrize("seed", range(3))
def test_ppo_gradient_inside_the_clip_range(seed):
    module = matcalc.compile(matcalc.parse(PPO))
    logp, logq, adv = _ppo_inputs(seed)
    value, grads = module.value_and_grad(logp=logp, logq=logq, Adv=adv)
    np.testing.assert_allclose(value, _ppo_numpy(logp, logq, adv), rtol=1e-12)
    expected = _central(lambda x: _ppo_numpy(x, logq, adv), logp)
    np.testing.assert_allclose(grads["logp"], expected, rtol=1e-7, atol=1e-10)
    r = np.exp(logp - logq)
    np.testing.assert_allclose(grads["logp"], -adv * r / len(r), rtol=1e-12)


def test_ppo_gradient_outside_the_clip_range_is_clipped():
    module = matcalc.compile(matcalc.parse(PPO))
    rng = np.random.default_rng(5)
    logq = rng.standard_normal(6)
    logp = logq + np.log(np.array([0.5, 0.6, 1.5, 1.7, 0.9, 1.1]))
    adv = np.array([1.0, -1.0, 1.0, -1.0, 0.5, -0.5])
    _, grads = module.value_and_grad(logp=logp, logq=logq, Adv=adv)
    expected = _central(lambda x: _ppo_numpy(x, logq, adv), logp)
    np.testing.assert_allclose(grads["logp"], expected, rtol=1e-7, atol=1e-10)


def test_ppo_hvp_inside_the_clip_range():
    """The loss is −Σ Adv·exp(logp − logq)/N there: H v = −Adv·r·v/N."""
    p = matcalc.parse(PPO)
    module = matcalc.compile(p, hvp=True, hessian=True)
    logp, logq, adv = _ppo_inputs(7)
    v = np.random.default_rng(8).standard_normal(logp.shape)
    r = np.exp(logp - logq)
    np.testing.assert_allclose(module.hvp(v, logp=logp, logq=logq, Adv=adv),
                               -adv * r * v / len(r), rtol=1e-12)
    np.testing.assert_allclose(module.hessian(logp=logp, logq=logq, Adv=adv),
                               np.diag(-adv * r / len(r)), rtol=1e-12)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_extremum_of_an_argument_with_itself(name):
    p = matcalc.parse(f"x: N\nf = sum({name}(x, x) ** 3)\n")
    x = np.array([0.3, -1.2, 2.0])
    module = matcalc.compile(p, hvp=True, jacobian=False)
    value, grads = module.value_and_grad(x=x)
    np.testing.assert_allclose(value, np.sum(x ** 3))
    np.testing.assert_allclose(grads["x"], 3 * x ** 2)
    np.testing.assert_allclose(module.hvp(np.ones(3), x=x), 6 * x)
    assert str(matcalc.grad(matcalc.parse(f"x: N\nf = sum({name}(x, x))\n"))["x"]) == "ones(N)"


def test_jacobian_of_maximum_of_x_with_itself_is_the_identity():
    p = matcalc.parse("x: N\nf = maximum(x, x)\n")
    module = matcalc.compile(p, jacobian=True)
    np.testing.assert_allclose(module.jacobian(x=np.array([1.0, -2.0, 0.5])), np.eye(3))


@pytest.mark.parametrize("text, a_slope, b_slope", [
    ("maximum(2 * x, x ** 2)", lambda x: 2.0, lambda x: 2 * x),        # ties at x = 0, 2
    ("minimum(x, 3 * x - 2)", lambda x: 1.0, lambda x: 3.0),           # tie at x = 1
    ("maximum(x, -x)", lambda x: 1.0, lambda x: -1.0),                 # |x|: 0 at 0
    ("minimum(sin(x), 0.5 * x)", lambda x: np.cos(x), lambda x: 0.5),  # tie at x = 0
])
def test_tie_gives_the_mean_of_the_two_derivatives(text, a_slope, b_slope):
    """At an exact tie the derivative is (a′ + b′)/2; off the tie it is the
    winner's, as central differences of NumPy say."""
    p = matcalc.parse(f"x: N\nf = sum({text})\n")
    module = matcalc.compile(p)
    ties = {"maximum(2 * x, x ** 2)": [0.0, 2.0], "minimum(x, 3 * x - 2)": [1.0],
            "maximum(x, -x)": [0.0], "minimum(sin(x), 0.5 * x)": [0.0]}[text]
    x = np.array(ties)
    _, grads = module.value_and_grad(x=x)
    expected = np.array([(a_slope(t) + b_slope(t)) / 2 for t in ties])
    np.testing.assert_allclose(grads["x"], expected, rtol=1e-12, atol=1e-15)
    off = np.array([t + s for t in ties for s in (-0.3, 0.3)])
    _, grads = module.value_and_grad(x=off)
    numeric = _central(lambda z: _numpy_sum(text, z), off)
    np.testing.assert_allclose(grads["x"], numeric, rtol=1e-7, atol=1e-9)


def _numpy_sum(text: str, x: np.ndarray) -> float:
    code = text.replace("maximum", "np.maximum").replace("minimum", "np.minimum") \
        .replace("sin", "np.sin")
    return float(np.sum(eval(code, {"np": np, "x": x})))


def test_relu_keeps_its_subgradient():
    module = matcalc.compile(matcalc.parse("x: N\nf = sum(relu(x))\n"))
    _, grads = module.value_and_grad(x=np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(grads["x"], [0.0, 0.0, 1.0])


def test_tie_rule_is_printed_generated_and_named_in_the_steps():
    g = matcalc.grad(matcalc.parse("x, y: N\nf = sum(maximum(x, y) ** 2)\n"), steps=True)
    text = str(g.steps)
    assert "∂f/∂x = δt0 * (1 + sign(x - y)) / 2" in text
    assert "1/2 at a tie" in text
    source = matcalc.codegen(matcalc.parse("x, y: N\nf = sum(maximum(x, y) ** 2)\n"))
    assert "np.sign(x - y)" in source


@pytest.mark.parametrize("expr, shapes", [
    ("sum(maximum(x, y) ** 2) + sum(minimum(X, 0.5) * Y)",
     {"x": "N", "y": "N", "X": "N x D", "Y": "N x D"}),
    ("sum(maximum(x, x) * y)", {"x": "N", "y": "N"}),
    ("-mean(minimum(exp(a - b) * c, minimum(maximum(exp(a - b), 0.8), 1.2) * c))",
     {"a": "N", "b": "N", "c": "N"}),
])
def test_every_step_holds_with_extrema(expr, shapes):
    for seed in (0, 1, 2):
        _check(matcalc.problem(expr, **shapes), seed)
