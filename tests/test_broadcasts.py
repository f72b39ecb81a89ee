"""No array of ones in generated code (a hidden cost): a broadcast
`ones(S) ⊙ x` is x broadcast to S, a view where it is only read and one new
array where it is a result (`np.broadcast_to(x, S).copy()`, never
`np.ones(S) * x`); a constant c ⊙ ones(S) is `np.full(S, c, dtype)`; the
0/1 mask where(k, 1, 0) is k cast to the floating type (where(k, 0, 1):
not k); the rules where(k, a 1, b) ⊙ y = where(k, a y, b y) and
(c 1) / b = 1 ⊙ (c / b) keep the ones out of products and quotients; and
max and min divide their adjoint by the number of ties before spreading
it. Each problem is checked against finite differences and on every code
target."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import matcalc
from matcalc.checks.verify import draw, sizes
from conftest import EXAMPLES
from corpus_checks import TARGET_CHECKS, check_differences, close, compile_for, kept, reference
from tensor_corpus import CORPUS

TARGETS = ("numpy", "array-api", "torch", "jax")
BROADCAST = "X: N x D\nw: N\nf = sum(w * sum(X, axis=1))\nwrt X\n"
PROBLEMS = kept({
    "broadcast gradient": matcalc.parse(BROADCAST),
    "max pool": matcalc.parse((EXAMPLES / "max_pool.mc").read_text("utf-8")),
    "mean pool": matcalc.parse(CORPUS["mean_pool"][0]),
    "ones divided": matcalc.parse(CORPUS["broadcast_all"][0]),
    "constant gradient": matcalc.problem("sum(2 * X) + sum(w * y)", X="N x D", w="D",
                                         y="D"),
    "branches": matcalc.problem("sum(where(X > 0, X, 0.1 * X) ** 2) "
                                "+ sum(where(X <= Y, sin(X), Y ** 2))", X="N x D", Y="N x D"),
    "broadcast value": matcalc.parse("X: N x D\nw: N\nf = 0 * X + w[:, None]\n"),
    "negated mask": matcalc.problem("sum(where(X > Y, 0, 3 * X))", X="N x D", Y="N x D"),
})

# (problem, target, a line of its module), each once made with np.ones
LINES = [
    ("broadcast gradient", "numpy", "dX = np.broadcast_to(w[:, None], (N, D)).copy()"),
    ("broadcast gradient", "torch", "dX = torch.broadcast_to(w[:, None], (N, D)).clone()"),
    ("broadcast gradient", "jax", "dX = jnp.broadcast_to(w[:, None], (N, D))"),
    ("broadcast gradient", "array-api",
     "dX = _copy(xp, xp.broadcast_to(w[:, None], (N, D)))"),
    ("max pool", "numpy", "g0 = (X == P[:, None]).astype(dtype)"),
    ("max pool", "numpy", "dX = g0 * (dt0 @ W.T / g0.sum(axis=1))[:, None]"),
    ("max pool", "torch", "g0 = (X == P[:, None]).to(**dtype)"),
    ("max pool", "jax", "dX = g0 * (dt0 @ W.T / g0.sum(axis=1))[:, None]"),
    ("max pool", "array-api", "g0 = xp.astype(X == P[:, None, ...], dtype)"),
    ("ones divided", "numpy", "dt1 = np.broadcast_to(1 / t2, (B, T, D))"),
    ("constant gradient", "numpy", "dX = np.full((N, D), 2, dtype)"),
    ("constant gradient", "torch", "dX = torch.full((N, D), 2, **dtype)"),
    ("constant gradient", "array-api", "dX = xp.full((N, D), 2, dtype=dtype, device=device)"),
    ("branches", "numpy", "dY = np.where(t2, 0, 2 * Y)"),
    ("branches", "numpy", "dX = np.where(t0, dt1, 0.1 * dt1) + np.where(t2, np.cos(X), 0)"),
    ("broadcast value", "numpy", "f = np.broadcast_to(w[:, None], (N, D)).copy()"),
    ("negated mask", "numpy", "dX = 3 * np.logical_not(t0).astype(dtype)"),
    ("negated mask", "array-api", "dX = 3 * xp.astype(xp.logical_not(t0), dtype)"),
]


def _code(problem, target: str) -> list[str]:
    """The module's statements (no comments), with the HVP of a scalar."""
    source = matcalc.codegen(problem, target=target, hvp=not problem.output.shape)
    return [line.strip() for line in source.splitlines()
            if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_no_array_of_ones(name, target):
    # was np.ones((N, D), dtype) * w[:, None] and np.where(k, np.ones(S), 0)
    code = _code(PROBLEMS[name], target)
    assert not [line for line in code if "ones(" in line], "\n".join(code)


@pytest.mark.parametrize("name, target, line", LINES, ids=[f"{n}-{t}" for n, t, _ in LINES])
def test_each_kind_is_written_as_by_hand(name, target, line):
    assert line in "\n".join(_code(PROBLEMS[name], target))


def _peak(call) -> int:
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("name, shape, bound", [
    ("broadcast gradient", (2000, 300), 1.5), ("mean pool", (16, 64, 128), 1.5),
    ("max pool", (16, 64, 128), 2.2)])
def test_a_broadcast_gradient_allocates_only_itself(name, shape, bound):
    # np.ones(S) times the vector: twice the gradient's size; max pooling's
    # np.where(mask, np.ones(S), 0), then g * (mask / count): three times
    # (now the 0/1 mask in the floating type, which keeps a NaN's NaN, and
    # dX: twice)
    problem = PROBLEMS[name]
    module = matcalc.compile(problem)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(shape if n == "X" else tuple(
        {"N": shape[0], "B": shape[0], "D": shape[-1], "K": 5}[str(d)] for d in v.shape))
        for n, v in problem.variables.items()]
    _, cache = module.forward(*inputs)
    assert _peak(lambda: module.backward(cache)) < bound * inputs[0].nbytes


@pytest.mark.parametrize("name", ["broadcast gradient", "constant gradient", "broadcast value"])
def test_a_broadcast_result_is_a_new_writeable_array(name):
    problem = PROBLEMS[name]
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    module = matcalc.compile(problem)
    dout = np.ones(np.shape(module.forward(**inputs)[0])) if problem.output.shape else None
    value, grads = module.value_and_grad(dout, **inputs)
    for result in [value, *grads.values()]:
        if np.ndim(result):
            assert result.flags.writeable and result.flags.owndata
            result *= 2  # a user's update in place (dX *= lr)
    torch = pytest.importorskip("torch")
    module = matcalc.compile(problem, target="torch")
    value, grads = module.value_and_grad(None if dout is None else torch.as_tensor(dout),
                                         **{n: torch.as_tensor(x) for n, x in inputs.items()})
    for result in [value, *grads.values()]:
        if result.ndim:
            result.mul_(2)  # an expanded view would refuse this


@pytest.mark.parametrize("text", [
    "X: D x N\nw: D\nf = sum(X.T * w)\nwrt X\n",               # dX a transposed broadcast
    "X: D x N\nw: N\nY = (X * 0 + w).T\nf = sum(Y * X.T)\nwrt X\n",
    "X: N x D\nw: D\nY = (X * 0 + w)[1:, :]\nf = sum(Y)\nwrt w\n",
])
def test_a_result_viewing_a_broadcast_is_writeable(text):
    """A result that is a transpose or slice of a broadcast owns its memory
    (was a read-only view of the broadcast: dX *= lr raised)."""
    problem = matcalc.parse(text)
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    module = matcalc.compile(problem)
    forward = module.forward(**inputs)[0]
    dout = np.ones(np.shape(forward)) if np.ndim(forward) else None
    value, grads = module.value_and_grad(dout, **inputs)
    for result in [value, *grads.values()]:
        if np.ndim(result):
            assert result.flags.writeable and 0 not in result.strides
            result *= 2


@pytest.mark.parametrize("target", ["numpy", "jax"])
@pytest.mark.parametrize("text", ["Y = X * 0 + step(w)", "Y = 2 * ones(N, D) * step(w)"])
def test_a_broadcast_mask_is_floating(text, target):
    """ones ⊙ step(w) broadcast is 0/1 in X's floating type, not bool or int."""
    problem = matcalc.parse(f"w: D\nX: N x D\n{text}\nf = sum(Y * X)\nwrt X\n")
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    if target == "jax":
        pytest.importorskip("jax")
    module = matcalc.compile(problem, target=target)
    _, grads = module.value_and_grad(**inputs)
    assert np.asarray(grads["X"]).dtype == np.float64 or (
        target == "jax" and np.asarray(grads["X"]).dtype.kind == "f")


def test_a_nan_in_a_max_gives_a_nan_gradient():
    """The tie mask multiplies (0 ⊙ NaN = NaN, as in JAX), never selects."""
    module = matcalc.compile("X: N x D\nf = sum(max(X, axis=1))\nwrt X\n")
    X = np.arange(6.0).reshape(2, 3)
    X[0, 1] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        _, grads = module.value_and_grad(X=X)
    assert np.isnan(grads["X"][0]).all() and grads["X"][1].tolist() == [0, 0, 1]


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_finite_differences(name):
    check_differences(PROBLEMS[name])


@pytest.mark.parametrize("target", list(TARGET_CHECKS))
@pytest.mark.parametrize("name", [n for n, p in PROBLEMS.items() if not p.output.shape])
def test_every_target_gives_numpys_numbers(name, target):
    TARGET_CHECKS[target](PROBLEMS[name])


def _hvp_by_differences(module, inputs: dict, v: dict, eps: float = 1e-6) -> dict:
    """(∇f(x + εv) − ∇f(x − εv)) / 2ε for each wrt variable."""
    shifted = [module.value_and_grad(**{n: x + s * eps * v.get(n, 0) for n, x in inputs.items()})[1]
               for s in (1, -1)]
    return {n: (shifted[0][n] - shifted[1][n]) / (2 * eps) for n in shifted[0]}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ["mean pool", "ones divided", "constant gradient"])
def test_hvp_matches_differences_of_the_gradient(name, target):
    problem = PROBLEMS[name]
    inputs, _, _ = reference(problem)
    rng = np.random.default_rng(1)
    v = {n: rng.standard_normal(np.shape(inputs[n])) for n in problem.wrt}
    want = _hvp_by_differences(matcalc.compile(problem), inputs, v)
    module = compile_for(problem, target, hvp=True)
    if target == "torch":
        torch = pytest.importorskip("torch")
        got = module.hvp({n: torch.as_tensor(x) for n, x in v.items()},
                         **{n: torch.as_tensor(x) for n, x in inputs.items()})
    else:
        got = module.hvp(v, **inputs)
    got = got if isinstance(got, dict) else {problem.wrt[0]: got}
    for n in want:
        close(np.asarray(got[n]), want[n], rtol=1e-6)


def _library(name: str):
    """(to the library, back to NumPy) for the array-API module's inputs."""
    if name == "strict":
        xp = pytest.importorskip("array_api_strict")
        return xp.asarray, lambda y: np.asarray(y._array)
    if name == "torch":
        torch = pytest.importorskip("torch")
        return torch.asarray, lambda y: y.numpy()
    if name == "jax":
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        return jax.numpy.asarray, np.asarray
    da = pytest.importorskip("dask.array")
    return (lambda x: da.from_array(x, chunks=(2,) * bool(x.ndim) + x.shape[1:])), \
        (lambda y: np.asarray(y.compute(scheduler="sync")))


@pytest.mark.parametrize("library", ["strict", "torch", "jax", "dask"])
@pytest.mark.parametrize("name", ["broadcast gradient", "constant gradient", "ones divided",
                                  "max pool", "broadcast value"])
def test_array_api_module_on_each_library(name, library):
    to, back = _library(library)
    problem = PROBLEMS[name]
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    numpy, portable = (matcalc.compile(problem, target=t) for t in ("numpy", "array-api"))
    dout = np.random.default_rng(1).standard_normal(np.shape(numpy.forward(**inputs)[0])) \
        if problem.output.shape else None
    value, grads = numpy.value_and_grad(dout, **inputs)
    got, got_grads = portable.value_and_grad(None if dout is None else to(dout),
                                             **{n: to(x) for n, x in inputs.items()})
    close(back(got), value)
    for n in grads:
        close(back(got_grads[n]), grads[n])
