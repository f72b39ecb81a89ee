"""Generated problems, checked numerically and textually.

`tests/strategies.py` builds random well-typed problems over the whole
language (bottom-up, with known shapes, domains respected by construction)
together with a naive NumPy reference of each function. For every generated
problem the tests below check that

* the generated module computes the function (against the NumPy reference;
  `matcalc.checks.reference`, the text evaluated as written, agrees with it too)
  and every gradient agrees with central differences (`matcalc.check`,
  tolerance 1e-6 relative to the values, as documented, which also compares
  the value with `matcalc.checks.reference`); square operands meet reductions of
  themselves and vectors in every broadcast orientation, so a rewrite that
  looks at shapes instead of axes is caught;
* `parse(str(problem))`, `p.expr(str(g[x]))` and every subexpression
  round-trip to the same node, and the gradient program `str(g)` is itself
  valid input that computes the same gradients;
* for scalar functions, the generated `hvp(v)` matches central differences
  of the generated gradient along a random direction v, and the generated
  Hessian by the first variable, in its documented layout, applied to v
  matches `hvp`; for array-valued functions, each generated Jacobian applied
  to v matches central differences of the function;
* the LaTeX is non-empty and balanced;
* the generated module is deterministic (same input, same bytes, also across
  processes with different hash seeds).

CI runs MATCALC_PROPERTY_EXAMPLES problems per property (default 300,
derandomized: the same problems on every run). Longer runs:

    MATCALC_PROPERTY_EXAMPLES=20000 pytest tests/test_properties.py -q

(stops at the first failure and shrinks it), or, every property of 20,000
problems without stopping, with a one-line summary at the end:

    python tests/strategies.py --problems 20000

Each failure a run ever found, shrunk, is a named `test_regression_*` below.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import matcalc
from matcalc.frontend.parser import parse_expr

from conftest import ROOT
from strategies import (CAP, MAX_DEPTH, PROPERTIES, RandomSource, build_problem,
                        check_generated, hvp_error, problems, program_body)

EXAMPLES = int(os.environ.get("MATCALC_PROPERTY_EXAMPLES", "300"))

GENERATED = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))


# ------------------------------------------------------ generated problems ---

@GENERATED
@given(problems())
def test_generated_gradients_match_central_differences(gp):
    """The module computes the function; every gradient matches central
    differences at random points within the documented tolerance."""
    check_generated(gp, ["numeric"])


@GENERATED
@given(problems())
def test_generated_problems_round_trip(gp):
    """str(problem), str(g[x]) and every subexpression parse back to the
    same node; str(g) is valid input that computes the same gradients."""
    check_generated(gp, ["round trip"])


@GENERATED
@given(problems())
def test_generated_latex_is_balanced(gp):
    check_generated(gp, ["latex"])


@GENERATED
@given(problems())
def test_generated_modules_are_deterministic(gp):
    check_generated(gp, ["codegen"])


@GENERATED
@given(problems())
def test_generated_second_order_matches_differences(gp):
    """hvp(v) against differences of the gradient, the Hessian against hvp,
    and each Jacobian against differences of the function."""
    check_generated(gp, ["second order"])


def test_property_groups_are_all_run():
    assert set(PROPERTIES) == {"round trip", "latex", "codegen", "numeric", "second order"}


# ------------------------------------------------- the strategy, checked ---

SAMPLE = [build_problem(RandomSource(seed)) for seed in range(400)]


# Functions that reshape or join arrays: the strategy draws no shapes they
# fit; tests/test_indexing.py checks them on its corpus, against JAX.
SHAPING = {"concatenate", "reshape", "stack"}


def test_strategy_covers_the_whole_language():
    """Every function of the language, every operator and piece of syntax
    occurs in a few hundred generated problems."""
    text = "\n".join(gp.text for gp in SAMPLE)
    for name in set(matcalc.ops.function_names()) - SHAPING:
        assert f"{name}(" in text, f"no generated problem calls {name}"
    for syntax in ["@", ".T", "'", "[:, None]", "[None, :]", "axis=0", "axis=1", "axis=-1",
                   "axis=-2", "axis=None", "**", " / ", " - ", "-", " x ", "×", " * N",
                   "spd", "symmetric", "wrt ", "; ", "# ", ", ", "(\n", "e-", "E", ".5",
                   "eye(", "ones(", "zeros(", "lambda", "α", "1 x ", "2 x "]:
        assert syntax in text, f"no generated problem contains {syntax!r}"
    assert any(len(gp.variables) >= 4 for gp in SAMPLE)
    assert any(gp.output_shape for gp in SAMPLE), "no array-valued function"
    assert any(not gp.output_shape for gp in SAMPLE)
    kron_shapes = [gp for gp in SAMPLE if "kron(" in gp.text]
    assert len(kron_shapes) > 10


def test_strategy_depth_and_names():
    depths = [gp.depth for gp in SAMPLE]
    assert max(depths) == MAX_DEPTH and min(depths) >= 0
    assert all(d <= MAX_DEPTH for d in depths)
    named = [gp for gp in SAMPLE if gp.text.count(" = ") >= 3]
    assert len(named) > 50, "too few problems with named intermediates"
    reused = 0
    for gp in SAMPLE:
        body = "\n".join(line for line in gp.text.splitlines() if ":" not in line.split("=")[0])
        reused += any(body.count(v.name) >= 2 for v in gp.variables)
    assert reused > 200, "variables should be used several times"


def test_strategy_respects_domains_by_construction():
    """Every generated function is finite at its inputs and within its
    bounds: no problem has to be filtered away (and NumPy warns of nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for gp in SAMPLE:
            value = np.asarray(gp.reference(gp.inputs()), dtype=float)
            assert np.all(np.isfinite(value)), gp.text
            lo, hi = gp.bounds
            assert np.all(value >= lo - 1e-9) and np.all(value <= hi + 1e-9), gp.text
            assert max(abs(lo), abs(hi)) <= CAP


def test_generated_modules_are_identical_across_processes(tmp_path):
    """The same problem text gives the same module bytes in processes with
    different hash seeds (set and dict orders must not leak into the code)."""
    texts = [gp.text for gp in SAMPLE[:40]]
    (tmp_path / "problems.json").write_text(json.dumps(texts), "utf-8")
    script = (
        "import hashlib, json, sys, matcalc\n"
        "out = []\n"
        "for text in json.load(open(sys.argv[1], encoding='utf-8')):\n"
        "    try:\n"
        "        out.append(hashlib.sha256(matcalc.codegen(text).encode()).hexdigest())\n"
        "    except Exception as err:\n"
        "        out.append(type(err).__name__)\n"
        "print(json.dumps(out))\n")

    def digests(seed):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "problems.json")],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    here = []
    for text in texts:
        try:
            here.append(hashlib.sha256(matcalc.codegen(text).encode()).hexdigest())
        except Exception as err:   # noqa: BLE001 - compared as a name across processes
            here.append(type(err).__name__)
    assert digests(1) == digests(4321) == here


# ------------------------------------------------------------ regressions ---
# Failures the generated problems found, each shrunk to its smallest form.
# They state the correct behaviour; a failing one is an open matcalc bug.

def _value_and_grad(text, **inputs):
    module = matcalc.compile(text)
    p = matcalc.parse(text)
    dout = [np.ones(np.shape(module.forward(*(inputs[n] for n in module.INPUTS))[0]))] \
        if p.output.shape else []
    return module.value_and_grad(*dout, **inputs)


def _assert_round_trips(text):
    p = matcalc.parse(text)
    again = matcalc.parse(str(p))
    assert again.output is p.output, f"{str(p)!r} reparses differently"
    g = matcalc.grad(p)
    scope = dict(p.scope())
    if g.seed is not None:
        scope[g.seed.name] = g.seed
    for name, e in g:
        back = parse_expr(str(e), scope)
        assert back is e, f"d{name} = {str(e)!r} parses back as {str(back)!r}"


def test_regression_bare_expression_problem_prints_as_valid_input():
    # str(p) put a `wrt` line after the bare expression, which must be last
    for text in ["x: N\nsum(x ** 2)\n", "X: N x N\nX\n"]:   # the second as Hypothesis shrank it
        p = matcalc.parse(text)
        again = matcalc.parse(str(p))
        assert again.output is p.output and again.output_name == "f"


def test_regression_function_that_is_an_intermediate():
    # `f = h`: the module assigned `f = h` without ever defining h (NameError),
    # and str(g) bound f twice
    x = np.array([0.1, -0.4, 0.7])
    value, grads = _value_and_grad("x: N\nh = exp(x)\nf = h\n", x=x)
    np.testing.assert_allclose(value, np.exp(x))
    np.testing.assert_allclose(grads["x"], np.exp(x))
    value, grads = _value_and_grad("x: N\nh = sum(exp(x))\nf = h\n", x=x)
    np.testing.assert_allclose(value, np.sum(np.exp(x)))
    program = program_body(matcalc.grad("x: N\nh = sum(exp(x))\nf = h\n"))
    names = [line.split(" = ")[0] for line in program]
    assert len(names) == len(set(names)), program
    # as Hypothesis shrank it
    value, grads = _value_and_grad("X: scalar\nW: N x N\nh = log(1 + exp(tanh(X)))\nloss = h\n",
                                   X=0.3, W=np.eye(2))
    np.testing.assert_allclose(value, np.log1p(np.exp(np.tanh(0.3))))


def test_regression_intermediate_that_is_another_intermediate():
    x = np.array([0.1, -0.4, 0.7])
    value, grads = _value_and_grad("x: N\nh = x\ng = h\nf = sum(g ** 2)\n", x=x)
    np.testing.assert_allclose(value, np.sum(x ** 2))
    np.testing.assert_allclose(grads["x"], 2 * x)
    S = np.array([[2.0, 0.5], [0.5, 1.0]])
    value, grads = _value_and_grad("S: N x N spd\nH2 = S.T\nC = H2.T\nf = sum(C ** 2)\n", S=S)
    np.testing.assert_allclose(value, np.sum(S ** 2))


def test_regression_float_constants_round_trip():
    # 1 / 3.0 printed as 0.3333333333333333, which parses to another Float
    _assert_round_trips("x: N\nf = sum(x / 3.0)\n")
    _assert_round_trips("x: N\nf = sum(x ** (1. / 3))\n")
    _assert_round_trips("W: N\nf = sum(W ** 2.0) - norm(W)\n")


def test_regression_negated_quotient_round_trips():
    # -(u / norm(u)) printed as -u / norm(u), which parses as (-u) / norm(u)
    _assert_round_trips("u: D x D\nf = trace(u) - norm(u)\n")
    _assert_round_trips("X: N x N\nW: N x N\nx: N x N\nloss = sum(X) - norm(X)\n")  # shrunk


def test_regression_negated_sum_factor_round_trips():
    # -(1 - v) * sin(x) parses back as (-1 + v) * sin(x)
    _assert_round_trips("x: N\nv: N\nf = sum(cos(x) * (1 - v))\n")


def test_regression_log_of_exp_in_a_power_gradient_round_trips():
    # the gradient by z of exp(X) ** z printed log(exp(X)), which parses as X
    _assert_round_trips("X: N x N\nz: scalar\nf = sum(exp(X) ** z)\n")


def test_regression_kron_built_by_a_derivative_rule_round_trips():
    # the adjoint of unkron_left is kron(2 * ones(1, 1), B), built without the
    # kron builder's coefficient rule, so it reparses as 2 * kron(...)
    _assert_round_trips("G: N x D\nB: N x D\nf = 2 * sum(unkron_left(G, B))\n")


def test_regression_kron_gradients_print_as_valid_input():
    # gradients of kron printed ones(K ** 2, K ** 2), which ones() rejects
    _assert_round_trips("A: K x K\nf = sum(kron(A, A))\n")


def test_regression_transpose_of_symmetric_plus_vector():
    # (S + v).T was simplified to S + v: S + v broadcasts v along the rows and
    # is not symmetric
    rng = np.random.default_rng(0)
    S = rng.standard_normal((3, 3))
    S = S + S.T
    v, W = rng.standard_normal(3), rng.standard_normal((3, 3))
    value, _ = _value_and_grad("S: N x N symmetric\nv: N\nW: N x N\nf = sum((S + v).T * W)\n",
                               S=S, v=v, W=W)
    np.testing.assert_allclose(value, np.sum((S + v).T * W))
    assert matcalc.check("S: N x N symmetric\nv: N\nu: N\nf = u @ (S * v)\n").ok


def test_regression_outer_of_a_vector_with_itself():
    # the adjoint ones(K, K) * t (t broadcast along rows) was taken for
    # symmetric, so outer(u, u)'s two contributions G u and G.T u merged
    r = matcalc.check("u: K\nf = sum(sum(outer(u, u), axis=0) ** 2)\n")
    assert r.ok, str(r)


def test_regression_symmetric_variable_gradient_with_broadcast():
    # the symmetric part of (row vector) * cos(B)-like gradients was skipped
    for text in ["B: N x N symmetric\nf = sum(sum(cos(B), axis=0) ** 2)\n",
                 "M: D\nS: D x D spd\nf = sum(maximum(M, S).T)\n",
                 "a: K x K symmetric\nf = norm1(logsumexp(a, axis=0))\n"]:
        r = matcalc.check(text)
        assert r.ok, f"{text}{r}"


def test_regression_negated_step_is_numeric():
    # step(x) was emitted as the boolean array (x > 0): -(x > 0) raises
    x = np.array([0.5, -1.0, 2.0])
    value, grads = _value_and_grad("x: N\nf = -sum(relu(x))\n", x=x)
    np.testing.assert_allclose(grads["x"], -(x > 0).astype(float))
    B = np.array([[0.5, -1.0], [2.0, 0.1]])
    value, grads = _value_and_grad("B: K x D\ny: scalar\nf = -sum(maximum(B, y))\n",
                                   B=B, y=0.2)
    np.testing.assert_allclose(grads["B"], -(B > 0.2).astype(float))


def test_regression_step_inner_product_counts():
    # (x > 0) @ (x > 0) is a boolean, True, not the count of positive entries
    x = np.array([0.5, -1.0, 2.0, 3.0])
    value, _ = _value_and_grad("x: N\nw: N\nf = step(x) @ step(x) + sum(w)\n", x=x, w=x)
    np.testing.assert_allclose(value, 3 + np.sum(x))


def test_regression_softmax_of_step():
    w = np.array([0.5, -1.0, 2.0])
    value, grads = _value_and_grad("w: K\nf = sum(softmax(step(w)) * w)\n", w=w)
    s = np.exp((w > 0).astype(float)) / np.sum(np.exp((w > 0).astype(float)))
    np.testing.assert_allclose(value, np.sum(s * w))


def test_regression_long_name_of_an_array_valued_function():
    # the `raise TypeError('backward needs dout ...')` line was wrapped inside
    # its string literal: the module did not compile
    c = np.array([1.0, 2.0])
    for name in ["objective_value", "a_rather_long_output_name_here"]:
        value, grads = _value_and_grad(f"c: N\n{name} = outer(c, c)\n", c=c)
        np.testing.assert_allclose(value, np.outer(c, c))
        np.testing.assert_allclose(grads["c"], 2 * c.sum() * np.ones(2))


@pytest.mark.parametrize("text, inputs", [
    ("dtype: N\nf = sum(exp(dtype))\n", {"dtype": np.array([0.1, 0.2])}),
    ("dtype: N x N\nf = trace(dtype)\n", {"dtype": np.eye(2)}),
    ("dtype: N x N\nf = sum(dtype)\n", {"dtype": np.eye(2)}),
])
def test_regression_variable_named_dtype(text, inputs):
    # the module's own `dtype` (for np.ones/np.eye) replaced the variable's name
    value, grads = _value_and_grad(text, **inputs)
    assert np.all(np.isfinite(grads["dtype"]))
    assert matcalc.check(text).ok


def test_regression_negated_mask_factor():
    # -step(a - b) * t printed as -(a - b > 0) * t: Python negates the boolean
    # mask before multiplying (TypeError)
    for text in ["x, w: scalar\nf = -minimum(exp(w), x)\n",
                 "x, w: scalar\nh = -minimum(1e0 / (1 + exp(-w)), x)\nh\n"]:   # as generated
        value, grads = _value_and_grad(text, x=0.5, w=0.2)
        np.testing.assert_allclose(value, -0.5)
        np.testing.assert_allclose(grads["x"], -1.0)
        np.testing.assert_allclose(grads["w"], 0.0)
    x, w = np.array([0.5, 3.0]), np.array([0.2, 0.1])
    value, grads = _value_and_grad("x, w: N\nf = -sum(minimum(exp(w), x))\n", x=x, w=w)
    np.testing.assert_allclose(grads["w"], -(np.exp(w) < x).astype(float) * np.exp(w))
    # as Hypothesis shrank it (MATCALC_PROPERTY_EXAMPLES=3000)
    x = np.array([0.3, 0.4, 0.1])
    value, grads = _value_and_grad("X: scalar\nW: scalar\nx: N\ny: N\nloss = X - relu(norm(x))\n",
                                   X=0.5, W=0.5, x=x, y=x)
    np.testing.assert_allclose(grads["x"], -x / np.linalg.norm(x))
    value, grads = _value_and_grad("x: N\nf = -relu(norm(x))\n", x=x)
    np.testing.assert_allclose(grads["x"], -x / np.linalg.norm(x))


def test_regression_exp_of_log_in_a_derivative_round_trips():
    # the derivative of expm1 at log(x) is 1 + expm1(log(x)) = exp(log(x)):
    # `add` built it without the exp builder, so it printed exp(log(x)),
    # which parses as x
    _assert_round_trips("x: N\nf = sum(expm1(log(x)))\n")


def test_regression_symbolic_coefficient_round_trips():
    # the coefficient -(N**2 + 1)/K printed as (-1 - N ** 2) / K, which parsed
    # as the Const (-N**2 - 1)/K: equal, but another SymPy tree and so another
    # node; constants in dimensions now have one normal form
    _assert_round_trips("B: N x N\nu: K\nf = sum(B + mean(-u)) + mean(-u)\n")


def test_regression_column_times_identity_round_trips():
    # mul(ones * v[:, None], eye(N)) from the sum and mul rules kept the
    # product: the diag(v) rewrite looked at the factors before the ones
    # were dropped (and only in the order column, identity)
    _assert_round_trips("c: N\nf = norm1(sum(outer(c, c) * eye(N), axis=1))\n")


def test_regression_solve_of_a_scaled_adjoint_round_trips():
    # solve(A, c B) = c solve(A, B) is a builder rule; dissolving the adjoint
    # marks rebuilt solve without it, so solve(A, -(... / norm(...))) printed
    # a form that parses to another node (seed 50095 of the long run)
    _assert_round_trips("A: N x N spd\nf = norm(-solve(A, A))\n")


def test_regression_scaled_diagonal_of_a_constant_vector_round_trips():
    # c * (-1[:, None] * I): the diag rewrite gave diag(-1) = -I, which was
    # kept as a factor of a new product, mul(1/N, mul(-1, I)), instead of
    # being multiplied through the builder (seed 16135 of the long run)
    _assert_round_trips("α: D x D\ny: N\nclass_ = (α / N * eye(D)).T\n"
                        "f = sum(y) - sum(sum(class_, axis=1))\n")


@pytest.mark.parametrize("expr, shapes, by_numpy", [
    ("sum((v * eye(M)) * W)", {"v": "1", "W": "M x M"},
     lambda v, W: np.sum(v * np.eye(len(W)) * W)),
    ("sum((v[:, None] * eye(1)) * W)", {"v": "N", "W": "1 x N"},
     lambda v, W: np.sum(v[:, None] * np.eye(1) * W)),
    ("sum((v[:, None] * eye(1)) @ W)", {"v": "N", "W": "1 x M"},
     lambda v, W: np.sum((v[:, None] * np.eye(1)) @ W)),
])
def test_regression_identity_times_a_length_one_axis_is_not_diag(expr, shapes, by_numpy):
    # v * I = diag(v) only when v is as long as I; a length-1 axis broadcasts
    # instead (found in review: the value differed from NumPy's)
    p = matcalc.problem(expr, **shapes)
    rng = np.random.default_rng(0)
    sizes = {"M": 3, "N": 4}
    inputs = {name: rng.standard_normal(tuple(sizes.get(str(d), 1) if not str(d).isdigit()
                                              else int(str(d)) for d in var.shape))
              for name, var in p.variables.items()}
    value, _ = matcalc.compile(p).value_and_grad(**inputs)
    np.testing.assert_allclose(value, by_numpy(**inputs), rtol=1e-12)
    assert matcalc.check(p, dims={k: v for k, v in sizes.items() if k in p.dims}).ok


def test_regression_scaled_gradient_that_is_a_transpose_keeps_its_scale():
    # (c R)ᵀ was a gradient and a product operand; moving c onto the products
    # dropped it from the gradient (found in review)
    p = matcalc.problem("sum(sin(X.T + B.T @ C)) / N", X="D x N", B="K x N", C="K x D")
    assert matcalc.check(p).ok
    assert str(matcalc.grad(p)["X"]) == "cos(X.T + B.T @ C).T / N"


def test_regression_named_adjoint_is_the_derivative():
    # dY must be ∂L/∂Y = cos(Y) / N, not cos(Y) with the 1/N moved elsewhere
    p = matcalc.parse("X: N x D\nW: D x H\nV: H x O\nZ1 = X @ W\nY = Z1 @ V\n"
                      "L = sum(sin(Y)) / N\nwrt W, V\n")
    assert "δY = cos(Y) / N" in str(matcalc.grad(p)).splitlines()


@pytest.mark.parametrize("text, shapes", [
    ("sum((b[:, None] + sigmoid(x)) ** 2)", {"b": "K", "x": "K"}),
    ("sum(mean(x[:, None] + A, axis=1) ** 3)", {"x": "K", "A": "K x N"}),
    ("mean(softmax((x + 3).T, axis=0))", {"x": "K x N"}),  # raised ShapeError
])
def test_regression_hvp_through_a_broadcast(text, shapes):
    # the tangent of b[:, None] + x by x alone kept x's shape, so sum(axis=0)
    # of it summed everything instead of adding K copies (seed 882 of the
    # second-order runs)
    module = matcalc.compile(matcalc.problem(text, wrt="x", **shapes), hvp=True)
    rng = np.random.default_rng(0)
    sizes = {"K": 3, "N": 4}
    inputs = {n: rng.uniform(-1, 1, tuple(sizes[d] for d in s.split(" x ")))
              for n, s in shapes.items()}
    direction = {"x": rng.standard_normal(inputs["x"].shape)}
    assert hvp_error(module, inputs, ["x"], direction, 1e-5) < 1e-6


@pytest.mark.parametrize("definition", ["a[:, None] * X + b[:, None] * X",
                                        "kron(A, X) + kron(A, B)"])
def test_regression_common_factor_keeps_a_named_intermediate(definition):
    # collecting a common factor took apart Z, a value the forward pass
    # computes: str(g[x]) no longer parsed back, and backward recomputed exp(Z)
    p = matcalc.parse("X: N x N\nA: N x N\nB: N x N\na: N\nb: N\n"
                      f"Z = {definition}\nf = sum(exp(Z) * Z)\nwrt X, a\n")
    g = matcalc.grad(p)
    for _, e in g:
        assert parse_expr(str(e), dict(p.scope())) is e
    backward = matcalc.codegen(p).split("def backward")[1]
    assert "np.exp" not in backward
