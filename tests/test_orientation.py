"""Rewrites hold for every shape, square ones included (issue 12, section 6).

With X: N x N, `X - logsumexp(X, axis=1)` subtracts the length-N vector
from every row (NumPy lines a vector up with the last axis), so it is not a
row softmax; matcalc must compute what NumPy computes for the text as
written. Each reproducer is checked against plain NumPy written here by hand:
the generated value, and the generated gradients against central
differences of that NumPy function. `check` itself now compares the value
with `matcalc.checks.reference`, the text evaluated as written.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import matcalc
import matcalc.ir.expr
from matcalc import ops
from matcalc.checks import reference, verify
from matcalc.targets.numpy import generate, load
from matcalc.ad.gradient import derive


def _lse(x, axis):
    return np.log(np.sum(np.exp(x), axis=axis))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _attention(S, V):
    P = np.exp(S - _lse(S, 1))
    return np.sum((P @ V) ** 2)


# (problem text, the same function in plain NumPy)
REPRODUCERS = [
    ("X, W: N x N\nf = sum(exp(X - logsumexp(X, axis=1)) * W)",
     lambda X, W: np.sum(np.exp(X - _lse(X, 1)) * W)),
    ("X, W: N x N\nf = sum(exp(X - logsumexp(X, axis=0)[:, None]) * W)",
     lambda X, W: np.sum(np.exp(X - _lse(X, 0)[:, None]) * W)),
    ("X, W: N x N\nf = sum(exp(X) / sum(exp(X), axis=0)[:, None] * W)",
     lambda X, W: np.sum(np.exp(X) / np.sum(np.exp(X), axis=0)[:, None] * W)),
    ("u: N\nY: N x N\n"
     "f = sigmoid(sigmoid(u)) @ log(sum(exp(exp(Y - logsumexp(Y, axis=0)[:, None])), axis=1))",
     lambda u, Y: _sigmoid(_sigmoid(u)) @ np.log(np.sum(np.exp(np.exp(
         Y - _lse(Y, 0)[:, None])), axis=1))),
    ("S: N x N\nV: N x D\nP = exp(S - logsumexp(S, axis=1))\nf = sum((P @ V) ** 2)",
     _attention),
    ("Q, K, V: N x D\nS = Q @ K.T\nP = exp(S - logsumexp(S, axis=1))\n"
     "f = sum((P @ V) ** 2) / N",
     lambda Q, K, V: _attention(Q @ K.T, V) / len(Q)),
]
IDS = ["row-lse-bare", "col-lse-as-column", "col-sum-as-column", "fuzzer", "attention",
       "attention-qk"]


def _inputs(problem, seed=0, n=4, d=3):
    rng = np.random.default_rng(seed)
    sizes = {"N": n, "D": d}
    return {name: rng.standard_normal(tuple(sizes[str(s)] for s in v.shape))
            for name, v in problem.variables.items()}


def _central_differences(f, inputs, name, h=1e-6):
    x = inputs[name]
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        out[i] = (f(**{**inputs, name: x + step}) - f(**{**inputs, name: x - step})) / (2 * h)
    return out


@pytest.mark.parametrize("text, numpy_f", REPRODUCERS, ids=IDS)
def test_square_broadcast_value_is_what_numpy_computes(text, numpy_f):
    p = matcalc.parse(text)
    module = matcalc.compile(p)
    for seed in (0, 1):
        inputs = _inputs(p, seed)
        value, grads = module.value_and_grad(**inputs)
        want = numpy_f(**inputs)
        assert value == pytest.approx(want, rel=1e-12), (value, want)
        assert reference.evaluate(p, inputs) == pytest.approx(want, rel=1e-12)
        for name in p.wrt:
            fd = _central_differences(numpy_f, inputs, name)
            np.testing.assert_allclose(grads[name], fd, rtol=1e-6, atol=1e-8 * abs(want))


@pytest.mark.parametrize("text, numpy_f", REPRODUCERS, ids=IDS)
def test_square_broadcast_passes_check(text, numpy_f):
    p = matcalc.parse(text)
    result = matcalc.check(p, dims={"N": 4, "D": 3} if "D" in p.dims else {"N": 4})
    assert result.ok, str(result)
    assert result.value_error is not None and result.value_error <= 1e-12


@pytest.mark.parametrize("text", [
    "X: N x N\nf = exp(X - logsumexp(X, axis=1))",
    "X: N x N\nf = exp(X - logsumexp(X, axis=0)[:, None])",
    "X: N x N\nf = exp(X) / sum(exp(X), axis=0)[:, None]",
    "X: N x N\nf = exp(X) / sum(exp(X), axis=1)",
    "X: N x N\nf = exp(X - logsumexp(X, axis=-1))",
])
def test_misoriented_reduction_is_not_a_softmax(text):
    out = matcalc.parse(text).output
    assert out.op == "name" and "softmax" not in str(out.args[0]), str(out.args[0])


@pytest.mark.parametrize("text, axis", [
    ("X: N x N\nf = exp(X - logsumexp(X, axis=1)[:, None])", 1),
    ("X: N x N\nf = exp(X - logsumexp(X, axis=0))", 0),
    ("X: N x N\nf = exp(X - logsumexp(X, axis=0)[None, :])", 0),
    ("X: N x N\nf = exp(X) / sum(exp(X), axis=1)[:, None]", 1),
    ("X: N x N\nf = exp(X) / sum(exp(X), axis=0)", 0),
    ("X: N x N\nf = exp(X) / sum(exp(X), axis=-2)[None, :]", 0),
    ("X: N x N\nf = exp(X - logsumexp(X))", None),
    ("x: N\nf = exp(x) / sum(exp(x))", None),
])
def test_well_oriented_reduction_is_still_a_softmax(text, axis):
    out = matcalc.parse(text).output
    node = out.args[0]
    assert node.op == "softmax" and node.param("axis") == axis, str(out)


def test_spread_names_the_axis_a_broadcast_operand_repeats_along():
    p = matcalc.parse("X: N x N\nv: N\na: scalar\nf = a")
    v, a = p.variables["v"], p.variables["a"]
    assert ops.spread(v) == (v, 0)                  # a bare vector lines up with columns
    assert ops.spread(ops.row(v)) == (v, 0)
    assert ops.spread(ops.col(v)) == (v, 1)
    assert ops.spread(a) == (a, None)


def test_check_reports_a_function_that_is_not_the_text():
    """A module computing a row softmax where the text subtracts a row of
    log-sum-exps: its gradients agree with its own forward pass, so only the
    comparison with the text as written finds it."""
    text = "X, W: N x N\nf = sum(exp(X - logsumexp(X, axis=1)) * W)"
    wrong = matcalc.parse("X, W: N x N\nf = sum(softmax(X, axis=1) * W)")
    module = load(generate(derive(wrong)), "f")
    result = verify.check(matcalc.parse(text), module=module)
    assert all(e <= 1e-6 for e in result.errors.values())
    assert not result.ok and result.value_error > 1e-3
    assert "value" in str(result) and "MISMATCH" in str(result)


def test_check_value_is_not_fooled_by_a_naive_formula_losing_digits():
    """log(1 - sigmoid(x)) at x = 30: plain NumPy keeps 3 digits, matcalc
    (−softplus(x)) all of them; the difference is within the plain
    formula's own rounding error, measured in extended precision."""
    p = matcalc.parse("x: N\nf = sum(log(1 - sigmoid(x)))")
    result = matcalc.check(p, inputs={"x": np.array([30.0, 31.0, 29.5])}, dims={"N": 3})
    plain = reference.evaluate(p, {"x": np.array([30.0, 31.0, 29.5])})
    assert abs(plain - result.value) > 1e-5 * abs(result.value)   # naive is off ...
    assert result.ok, str(result)                                   # ... and known to be


def test_check_value_where_plain_numpy_overflows_is_not_compared():
    result = matcalc.check("X: N x D\nf = sum(log(softmax(1000 * X, axis=1)))")
    assert result.ok and np.isnan(result.value_error)
    assert "not compared" in str(result)


def test_reference_evaluates_every_function_of_the_language():
    covered = set(reference.FUNCTIONS) | set(reference.CONSTANT_ARRAYS)
    assert set(ops.function_names()) <= covered


def test_reference_reads_the_text_not_the_graph():
    p = matcalc.parse("X: N x N\nZ = X - logsumexp(X, axis=1)\nf = sum(exp(Z) ** 2)")
    X = np.arange(9.0).reshape(3, 3) / 7
    want = np.sum(np.exp(X - _lse(X, 1)) ** 2)
    assert reference.evaluate(p, {"X": X}) == pytest.approx(want, rel=1e-14)
    assert reference.evaluate(p, {"X": X}, dtype=np.longdouble) == pytest.approx(want, rel=1e-14)


# ------------------------------------------------ the property strategy ---

def _shape_based(b, op, x):
    """The rule before issue 12: a reduction of x, as a column or bare,
    whatever axis it reduced (it looked at shapes, not axes)."""
    r = b.args[0] if isinstance(b, matcalc.ir.expr.Apply) and b.op in ("col", "row") else b
    if isinstance(r, matcalc.ir.expr.Apply) and r.op == op and r.args[0] is x:
        return r
    return None


def test_strategy_generates_every_broadcast_orientation():
    from strategies import RandomSource, build_problem
    text = "\n".join(build_problem(RandomSource(seed)).text for seed in range(400))
    for pattern in [r"- logsumexp\([^\n]*axis=-?1\)\)", r"logsumexp\([^\n]*axis=0\)\[:, None\]",
                    r"/ sum\(exp\([^\n]*\[:, None\]", r"/ sum\(exp\([^\n]*\[None, :\]",
                    r"\[:, None\] \* eye\(", r"diag\([^\n]*\) @ ", r": (\w) [x×*] \1\b"]:
        assert re.search(pattern, text), f"no generated problem matches {pattern!r}"


def test_strategy_catches_a_rule_that_looks_at_shapes(monkeypatch):
    from strategies import RandomSource, build_problem, problem_failures
    monkeypatch.setattr(ops.identities, "_reduction_of", _shape_based)
    for seed in range(400):
        gp = build_problem(RandomSource(seed))
        if "logsumexp(" in gp.text or "sum(exp(" in gp.text:
            failures = problem_failures(gp, ["numeric"])
            if failures:
                assert "value" in failures[0]
                return
    pytest.fail("no generated problem exposes the shape-based softmax rule")


def test_reference_has_no_value_where_plain_numpy_raises_or_there_is_no_text():
    import dataclasses
    p = matcalc.parse("A: N x N\nf = sum(inv(A))")
    assert reference.evaluate(p, {"A": np.zeros((3, 3))}) is None         # singular
    assert reference.evaluate(p, {"A": np.eye(3)}) == 3.0
    assert reference.evaluate(dataclasses.replace(p, source=None), {"A": np.eye(3)}) is None
