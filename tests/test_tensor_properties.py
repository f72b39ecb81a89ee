"""Generated problems on arrays of order 3 and 4 (`tests/tensor_strategies.py`):
elementwise functions, broadcasting against lower-order operands,
reductions over axis tuples with and without keepdims, softmax and
log_softmax. For each, the gradient matches central differences
(`matcalc.check`, which also compares the value with the text read by plain
NumPy), and the generated NumPy module's value and gradients match
`jax.value_and_grad` of the same function written in jax.numpy.

MATCALC_TENSOR_EXAMPLES problems per run (default 40, derandomized).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import matcalc
from matcalc.checks.verify import draw, sizes
from tensor_strategies import tensor_problems

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

EXAMPLES = int(os.environ.get("MATCALC_TENSOR_EXAMPLES", "40"))
GENERATED = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))


def _close(got, want):
    want = np.asarray(want, dtype=float)
    np.testing.assert_allclose(np.asarray(got, dtype=float), want, rtol=1e-9,
                               atol=1e-9 * max(1.0, float(np.max(np.abs(want)))))


@GENERATED
@given(tensor_problems())
def test_generated_tensor_problems_match_differences_and_jax(tp):
    problem = matcalc.parse(tp.text)
    result = matcalc.check(problem)
    assert result.ok, f"{tp.text}\n{result}"
    inputs = draw(problem, sizes(problem), np.random.default_rng(1))
    value, grads = matcalc.compile(problem).value_and_grad(**inputs)
    wrt = list(problem.wrt)

    def of(*arrays):
        return tp.jax_f(dict(zip(wrt, arrays)))
    want, want_grads = jax.jit(jax.value_and_grad(of, argnums=tuple(range(len(wrt)))))(
        *(jax.numpy.asarray(inputs[w]) for w in wrt))
    _close(value, want)
    for w, g in zip(wrt, want_grads):
        _close(grads[w], g)


@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(tensor_problems())
def test_generated_tensor_gradients_read_back(tp):
    problem = matcalc.parse(tp.text)
    for _, g in matcalc.grad(problem):
        assert problem.expr(str(g)) is g, tp.text


def test_the_strategy_makes_order_three_and_four_problems_with_keepdims():
    texts = []

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(tensor_problems())
    def collect(tp):
        texts.append(tp.text)
    collect()
    joined = "\n".join(texts)
    for word in ("keepdims=True", "B x H x T x D", ": T x D", "max(", "softmax(", "var(",
                 "axis=(", "axis=-"):
        assert word in joined, word
