"""No array of ones in second-order code either: the survey's hits (an HVP's
product with a broadcast direction, an outer product with ones in a Hessian,
a sum of a slice's adjoint, a solve of an array of ones, the adjoint of a
Kronecker product at ones; `tests/survey_ones.py` finds them), each made by the
rules of `ops/ones_forms.py`, now computed without one. Each problem's
source has no `ones(` on any target, its numbers agree with finite
differences, and its peak memory is at most what hand-written NumPy takes."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import matcalc
from matcalc.checks.verify import draw, sizes
from textbook_table import ROWS

TARGETS = ("numpy", "array-api", "torch", "jax")
RBF = next(r for r in ROWS if r.id == "rbf_rows").problem()
LSE = next(r for r in ROWS if r.id == "temperature_lse").problem()
LINEAR = matcalc.parse("X: N x D\nw: D\nf = sum(X @ w)\nwrt X, w\n")
VARIANCE = matcalc.parse("x: N\nf = sum((x - mean(x)) ** 2) / (N - 1)\n")
SLICE = matcalc.parse("X: N x D\nw: D\nY = (X * 0 + w)[1:, :]\nf = sum(Y)\nwrt w\n")
SOLVE = matcalc.parse("S: N x N spd\nX: N x D\nf = sum(solve(S, X)) + sum(inv(S))\nwrt S, X\n")
KRON = matcalc.parse("A: K x K\nf = sum(kron(A, A))\n")
# zeros with ones at a slice: NumPy places the constant (item assignment
# broadcasts it); the targets without item assignment still place ones
PLACED = matcalc.parse("x: N\ny: N\nf = sum(x[1:]) + sum(3 * y[:-2][::-1])\n")
PROBLEMS = {"rbf rows": RBF, "softmax": LSE, "linear": LINEAR, "variance": VARIANCE,
            "slice of a broadcast": SLICE, "solve of ones": SOLVE, "kron": KRON,
            "placed ones": PLACED}


def _code(problem, target: str) -> list[str]:
    """The statements of the module with every function it can have."""
    source = matcalc.codegen(problem, target=target, hvp=True, hessian=True)
    return [line.strip() for line in source.splitlines()
            if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize("name, target", [(n, t) for n in PROBLEMS for t in TARGETS
                                          if n != "placed ones" or t == "numpy"])
def test_no_array_of_ones(name, target):
    # was t2 @ np.broadcast_to(-v_x, (N, D)), np.outer(np.ones((N,), dtype), g0),
    # _unindex(np.ones((-1 + N, D), dtype), ...).sum(axis=0), t0 @ np.ones((N, D), dtype),
    # _unkron_left(np.ones((K ** 2, K ** 2), dtype), A), _unindex(np.ones((-1 + N,), dtype), ...)
    code = _code(PROBLEMS[name], target)
    assert not [line for line in code if "ones(" in line], "\n".join(code)


@pytest.mark.parametrize("line, name", [
    ("Hv_x = 2 * (2 * gamma * (((t0 @ v_x) * t1 * a) @ t0) - f * v_x) * gamma", "rbf rows"),
    ("H_X_w[(...,) + index] = np.broadcast_to(v_w, (N, D))", "linear"),
    ("dX = np.broadcast_to(w, (N, D)).copy()", "linear"),
    ("H_x = np.diag(g0 / T) + np.outer(-g0 / T, g0)", "softmax"),
    ("dw = np.full((D,), -1 + N, dtype)", "slice of a broadcast"),
    ("g0 = t0.sum(axis=1)", "solve of ones"),
    ("dA = np.broadcast_to(2 * A.sum(), (K, K)).copy()", "kron"),
    ("dx = _unindex(dtype.type(1), (N,), np.s_[1:])", "placed ones"),
])
def test_each_is_written_as_by_hand(line, name):
    assert line in "\n".join(_code(PROBLEMS[name], "numpy"))


def _inputs(problem, seed: int = 0) -> dict:
    return draw(problem, sizes(problem), np.random.default_rng(seed))


def _gradient(module, inputs: dict, name: str, v: dict, eps: float) -> np.ndarray:
    """(∇_name f(x + εv) − ∇_name f(x − εv)) / 2ε."""
    shifted = [module.value_and_grad(**{n: x + s * eps * v.get(n, 0) for n, x in inputs.items()})
               [1][name] for s in (1, -1)]
    return (shifted[0] - shifted[1]) / (2 * eps)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_second_order_matches_differences_of_the_gradient(name):
    problem = PROBLEMS[name]
    inputs = _inputs(problem)
    assert matcalc.check(problem).ok and matcalc.check(problem, seed=1).ok
    module = matcalc.compile(problem, hvp=True, hessian=True)
    rng = np.random.default_rng(1)
    v = {n: rng.standard_normal(np.shape(inputs[n])) for n in problem.wrt}
    # a symmetric matrix moves along symmetric directions only
    v = {n: (x + x.T) / 2 if problem.variables[n].structure else x for n, x in v.items()}
    single = len(problem.wrt) == 1
    got = module.hvp(v[problem.wrt[0]] if single else v, **inputs)
    got = {problem.wrt[0]: got} if single else got
    for n in problem.wrt:
        want = _gradient(module, inputs, n, v, 1e-6)
        np.testing.assert_allclose(got[n], want, rtol=1e-6, atol=1e-6)
    # every block of the full Hessian: H[x][y] applied to e_j (symmetrised for
    # a symmetric y) is the change of the gradient by x along it
    blocks = module.hessian(**inputs)
    blocks = {problem.wrt[0]: {problem.wrt[0]: blocks}} if single else blocks
    for first in problem.wrt:
        for second in problem.wrt:
            for j in np.ndindex(np.shape(inputs[second])):
                e = np.zeros(np.shape(inputs[second]))
                e[j] = 1
                e = (e + e.T) / 2 if problem.variables[second].structure else e
                want = _gradient(module, inputs, first, {second: e}, 1e-6)
                got = np.tensordot(blocks[first][second], e, axes=e.ndim)
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# What a peak may hold beyond the arrays: a few Python objects (a tuple, a dict).
OVERHEAD = 4096


def _peak(call) -> int:
    """The most memory `call` holds at once, in bytes (its result included)."""
    tracemalloc.start()
    result = call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak


def _rbf_hvp_by_hand(X, x, a, gamma, v):
    """2γ(−(Σₙ kₙ) v + 2γ Rᵀ(k ⊙ R v)), R = X − x, k = a ⊙ exp(−γ Σ R²)
    (the textbook row's R and k)."""
    R = X - x
    k = a * np.exp(-gamma * np.sum(R ** 2, axis=1))
    return 2 * gamma * (2 * gamma * (R.T @ (k * (R @ v))) - k.sum() * v)


def test_rbf_hvp_allocates_no_more_than_by_hand():
    # t2.dot(np.broadcast_to(-v_x, (N, D))), as printed then, copied the N x D broadcast,
    # and (-2 * t0 * v_x).sum(axis=1) made two N x D products for t0 @ v_x
    rng = np.random.default_rng(0)
    X, x, a, v = (rng.standard_normal(s) for s in ((100_000, 8), 8, 100_000, 8))
    module = matcalc.compile(RBF, hvp=True)
    want = _rbf_hvp_by_hand(X, x, a, 0.1, v)
    np.testing.assert_allclose(module.hvp(v, X=X, x=x, a=a, gamma=0.1), want, rtol=1e-10)
    ours = _peak(lambda: module.hvp(v, X=X, x=x, a=a, gamma=0.1))
    assert ours <= _peak(lambda: _rbf_hvp_by_hand(X, x, a, 0.1, v)) + OVERHEAD


SOLVE_X = matcalc.parse("S: N x N spd\nX: N x D\nf = sum(solve(S, X))\nwrt X\n")


def test_solve_of_ones_allocates_no_more_than_by_hand():
    # np.linalg.solve(S, np.ones((N, D), dtype)): an N x D array of ones, solved for
    rng = np.random.default_rng(0)
    Q, X = rng.standard_normal((500, 500)), rng.standard_normal((500, 2000))
    S = Q @ Q.T / 500 + np.eye(500)
    module = matcalc.compile(SOLVE_X)
    _, cache = module.forward(S=S, X=X)
    want = np.broadcast_to(np.linalg.solve(S.T, np.ones(500))[:, None], X.shape).copy()
    np.testing.assert_allclose(module.backward(cache)[0], want, rtol=1e-10)
    assert _peak(lambda: module.backward(cache)) <= OVERHEAD + _peak(
        lambda: np.broadcast_to(np.linalg.solve(S.T, np.ones(500))[:, None], X.shape).copy())


def _backward(module, **inputs):
    _, cache = module.forward(**inputs)
    return lambda: module.backward(cache)


@pytest.mark.parametrize("name, hessian, call, by_hand", [
    ("linear", "X,w", lambda m, X, w: lambda: m.hessian(X=X, w=w),
     lambda X, w: np.broadcast_to(np.eye(len(w)), X.shape + (len(w),)).copy()),
    ("slice of a broadcast", True, lambda m, X, w: _backward(m, X=X, w=w),
     lambda X, w: np.full(w.shape, len(X) - 1.0)),
])
def test_allocates_no_more_than_by_hand(name, hessian, call, by_hand):
    # np.outer(np.ones(N), v_w) for each of the D columns of the mixed
    # Hessian; _unindex(np.ones((N - 1, D)), ...) summed to a D-vector
    rng = np.random.default_rng(0)
    X, w = rng.standard_normal((20_000, 8)), rng.standard_normal(8)
    module = matcalc.compile(PROBLEMS[name], hessian=hessian)
    assert _peak(call(module, X, w)) <= _peak(lambda: by_hand(X, w)) + OVERHEAD


def _placed_by_hand(x):
    dx, dy = np.zeros_like(x), np.zeros_like(x)
    dx[1:], dy[:-2] = 1, 3
    return dx, dy


def test_placed_ones_allocate_no_more_than_by_hand():
    # _unindex(np.ones((-1 + N,), dtype), (N,), np.s_[1:]): the ones, then the result
    x = np.random.default_rng(0).standard_normal(1_000_000)
    module = matcalc.compile(PLACED)
    _, cache = module.forward(x=x, y=x)
    for got, want in zip(module.backward(cache), _placed_by_hand(x)):
        np.testing.assert_array_equal(got, want)
    assert _peak(lambda: module.backward(cache)) <= _peak(lambda: _placed_by_hand(x)) + OVERHEAD
