"""Every gradient a generated module returns is the caller's own array:
never an input (the gradient of sum(X * Y) by X is Y), a value the forward
pass cached (that of sum(exp(X)) is exp(X)), or another gradient (those of
sum(tanh(X + Y)) by X and by Y are one array), so that `dX *= lr` changes
nothing else (`passes/results.held`)."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from corpus_checks import compile_for

CASES = {
    "an input": "X: N x D\nY: N x D\nf = sum(X * Y)\n",
    "a cached value": "X: N x D\nf = sum(exp(X))\n",
    "another gradient": "X: N x D\nY: N x D\nf = sum(tanh(X + Y))\n",
    "a transposed input": "X: N x D\nY: D x N\nf = sum(X * Y.T)\n",
}


def _arrays(cache) -> list:
    return [x for x in cache if isinstance(x, np.ndarray)]


@pytest.mark.parametrize("target", ["numpy", "array-api"])
@pytest.mark.parametrize("name", CASES)
def test_a_gradient_shares_memory_with_nothing_else(name, target):
    module = compile_for(CASES[name], target)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(3, 4) if s == ("N", "D") else (4, 3)) for s in module.SHAPES]
    kept = [x.copy() for x in inputs]
    value, cache = module.forward(*inputs)
    grads = module.backward(cache)
    want = module.backward(cache)
    for k, g in enumerate(grads):
        others = [*inputs, *_arrays(cache), *(h for j, h in enumerate(grads) if j != k)]
        assert not any(np.shares_memory(g, x) for x in others), k
    for g in grads:
        g *= 0.0  # the caller's own: nothing else changes
    for x, y in zip(inputs, kept):
        np.testing.assert_array_equal(x, y)
    for g, w in zip(module.backward(cache), want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    assert all(np.any(np.asarray(w) != 0) for w in want)


def test_a_gradient_computed_afresh_is_not_copied():
    """Only an array held elsewhere is copied: a product is returned as made."""
    source = matcalc.codegen((
        "X: N x D\nW: D x H\nf = sum(tanh(X @ W))\n"))
    assert ".copy()" not in source.split("def backward")[1]
