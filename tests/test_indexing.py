"""Issue 16's shapes and indexing: NumPy's basic indexing (integers,
negative ones, slices with steps, `...`, None), `reshape` with symbolic sizes
(a product dimension declared `D = H * E`), and gather by an integer input
(`E[tokens]`, `eye(C)[labels]`) whose gradient is a scatter-add.

Each problem's value and gradients are compared with `jax.value_and_grad`
of the same function written in jax.numpy, and with finite differences
(`matcalc.check`); the generated NumPy module keeps float32, the array-API
module runs on array-api-strict, the PyTorch and JAX targets give NumPy's
numbers, and bad input is refused with its line and column.
"""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.checks.verify import draw, sizes
from matcalc.errors import MatcalcError
from corpus_checks import (TARGET_CHECKS, assert_refused, check_differences, close, kept,
                           per_target, reference)

jax = pytest.importorskip("jax")
jnp = jax.numpy


def _lse(z, axis):
    return jax.scipy.special.logsumexp(z, axis=axis)


# (source, the same function in jax.numpy of the inputs by name)
PROBLEMS = [
    ("X: B x T x D\nw: D\nf = sum(tanh(X[:, -1] * w))",
     lambda v: jnp.sum(jnp.tanh(v["X"][:, -1] * v["w"]))),
    ("X: B x T x D\nf = sum(X[:, 0] ** 2 * X[:, 1])",
     lambda v: jnp.sum(v["X"][:, 0] ** 2 * v["X"][:, 1])),
    ("X: B x T x D\nf = sum(X[:, ::-1] * sin(X))",
     lambda v: jnp.sum(v["X"][:, ::-1] * jnp.sin(v["X"]))),
    ("X: B x T x D\nf = sum(sin(X[..., 1:]) * X[..., :-1])",
     lambda v: jnp.sum(jnp.sin(v["X"][..., 1:]) * v["X"][..., :-1])),
    ("X: 6 x D\nf = sum(X[::2] * X[1::2] ** 2)",
     lambda v: jnp.sum(v["X"][::2] * v["X"][1::2] ** 2)),
    ("X: 4 x D\nf = sum(exp(X[1:3]))",
     lambda v: jnp.sum(jnp.exp(v["X"][1:3]))),
    ("X: 5 x D\nf = sum(X[3:0:-1] ** 3 * X[:3])",
     lambda v: jnp.sum(v["X"][3:0:-1] ** 3 * v["X"][:3])),
    ("X: B x T x D\ny: B x D\nf = sum((X[:, 1, :] - y) ** 2)",
     lambda v: jnp.sum((v["X"][:, 1, :] - v["y"]) ** 2)),
    ("X: B x T x D\nW: D x D\nf = sum(X[0, ::-1, None] * X[-1, :, :, None] * W)",
     lambda v: jnp.sum(v["X"][0, ::-1, None] * v["X"][-1, :, :, None] * v["W"])),
    ("x: N\nf = sum(x[1:] * x[:-1]) + x[0] * x[-1]",
     lambda v: jnp.sum(v["x"][1:] * v["x"][:-1]) + v["x"][0] * v["x"][-1]),
    ("X: N x D\nf = sum(X[-1] * X[0]) + sum(X[1:, ::-1] * X[:-1, :])",
     lambda v: jnp.sum(v["X"][-1] * v["X"][0]) + jnp.sum(v["X"][1:, ::-1] * v["X"][:-1, :])),
    ("X: B x T x D\nv: T\nf = sum(X[:, :, None] * X[:, None] * v[None, :, None, None])",
     lambda v: jnp.sum(v["X"][:, :, None] * v["X"][:, None] * v["v"][None, :, None, None])),
    # heads by reshape: softmax over each head's E entries, without transposes
    ("H = 2\nD = H * E\nX: B x T x D\nQ = reshape(X, (B, T, H, E))\n"
     "P = exp(Q) / sum(exp(Q), axis=3)[..., None]\nf = sum(P * Q)",
     lambda v: jnp.sum(jax.nn.softmax(v["X"].reshape(v["X"].shape[:2] + (2, -1)), axis=3)
                       * v["X"].reshape(v["X"].shape[:2] + (2, -1)))),
    # a named product of dimensions sizes eye and zeros (a GP's kron(B, Kx) + s I)
    ("F = E * M\nB: E x E\nK: M x M\ny: F\nf = y @ solve(kron(B, K) + eye(F), y) "
     "+ sum(zeros(F, F) @ y)",
     lambda v: v["y"] @ jnp.linalg.solve(jnp.kron(v["B"], v["K"]) + jnp.eye(v["y"].shape[0]),
                                         v["y"])),
    ("X: B x T x D\nw: D\nf = sum(reshape(X * w, (B, -1)) ** 2) + sum(reshape(X, (-1,))[1:])",
     lambda v: jnp.sum((v["X"] * v["w"]).reshape(v["X"].shape[0], -1) ** 2)
     + jnp.sum(v["X"].reshape(-1)[1:])),
    ("X: B x T x D\nf = sum(reshape(X, (B, T * D))[:, 1:] ** 2)",
     lambda v: jnp.sum(v["X"].reshape(v["X"].shape[0], -1)[:, 1:] ** 2)),
    # the embedding + mean-pool + softmax cross-entropy classifier
    ("tokens: B x T int\nE: V x D\nW: D x C\nlabels: B int\nh = mean(E[tokens], axis=1)\n"
     "z = h @ W\nf = -sum(eye(C)[labels] * (z - logsumexp(z, axis=1)[:, None])) / B",
     lambda v: -jnp.sum(jax.nn.one_hot(v["labels"], v["W"].shape[1])
                        * jax.nn.log_softmax(jnp.mean(v["E"][v["tokens"]], axis=1) @ v["W"],
                                             axis=1)) / v["tokens"].shape[0]),
    ("labels: N int\nZ: N x C\nf = -sum(eye(C)[labels] * (Z - logsumexp(Z, axis=1)[:, None]))",
     lambda v: -jnp.sum(jax.nn.one_hot(v["labels"], v["Z"].shape[1])
                        * (v["Z"] - _lse(v["Z"], 1)[:, None]))),
    # seven tokens into three rows: repeats, which the scatter-add must add up
    ("E: 3 x D\ntokens: 7 int\nf = sum(E[tokens] ** 2 * sin(E[tokens]))",
     lambda v: jnp.sum(v["E"][v["tokens"]] ** 2 * jnp.sin(v["E"][v["tokens"]]))),
    ("e: V\ntokens: B x T int\nf = sum(tanh(e[tokens]) ** 2)",
     lambda v: jnp.sum(jnp.tanh(v["e"][v["tokens"]]) ** 2)),
    ("E: V x D\nF: V x D\ntokens: B x T int\nf = sum(E[tokens][:, -1] * F[tokens][:, 0])",
     lambda v: jnp.sum(v["E"][v["tokens"]][:, -1] * v["F"][v["tokens"]][:, 0])),
    ("E: V x D\ntokens: B x T int\nP: T x D\nf = sum(log1p(exp(E[tokens] + P)))",
     lambda v: jnp.sum(jnp.log1p(jnp.exp(v["E"][v["tokens"]] + v["P"])))),
    # concatenate and stack of a few arrays: the adjoint slices the parts out
    ("A: N x D\nB: M x D\nf = sum(tanh(concatenate((A, B), axis=0)) ** 2)",
     lambda v: jnp.sum(jnp.tanh(jnp.concatenate((v["A"], v["B"]), axis=0)) ** 2)),
    ("x: D\ny: D\nf = sum(stack((x, y), axis=1) ** 3) + sum(stack((x, sin(y))) * 2)",
     lambda v: jnp.sum(jnp.stack((v["x"], v["y"]), axis=1) ** 3)
     + jnp.sum(jnp.stack((v["x"], jnp.sin(v["y"]))) * 2)),
    ("X: B x T x D\nY: B x T x D\nf = sum(concatenate((X, Y * X, Y), axis=2)[..., 1:] ** 2)",
     lambda v: jnp.sum(jnp.concatenate((v["X"], v["Y"] * v["X"], v["Y"]), axis=2)[..., 1:] ** 2)),
    ("X: B x T x D\nY: B x T x D\nf = sum(stack((X, Y), axis=1)[:, -1] * exp(X))",
     lambda v: jnp.sum(jnp.stack((v["X"], v["Y"]), axis=1)[:, -1] * jnp.exp(v["X"]))),
]
IDS = [p[0].split("\n")[-1] for p in PROBLEMS]


PARSED = kept({i: matcalc.parse(p[0]) for i, p in zip(IDS, PROBLEMS)})
FUNCTIONS = {i: p[1] for i, p in zip(IDS, PROBLEMS)}


assert len(PARSED) == len(PROBLEMS)


def _inputs(problem, seed=0):
    return draw(problem, sizes(problem), np.random.default_rng(seed))


@pytest.mark.parametrize("name", IDS)
def test_matches_jax_grad(name):
    jax.config.update("jax_enable_x64", True)
    problem, function = PARSED[name], FUNCTIONS[name]
    inputs, value, grads = reference(problem)
    wrt = list(problem.wrt)
    assert not any(problem.variables[w].domain == "int" for w in wrt)

    def of(floats):
        return function({**{n: jnp.asarray(x) for n, x in inputs.items()}, **floats})
    want, want_grads = jax.jit(jax.value_and_grad(of))({w: jnp.asarray(inputs[w]) for w in wrt})
    close(value, want)
    for w in wrt:
        close(grads[w], want_grads[w])


@pytest.mark.parametrize("name", IDS)
def test_gradient_matches_finite_differences(name):
    check_differences(PARSED[name])


@pytest.mark.parametrize("target, name", per_target(PARSED))
def test_targets_give_the_numpy_modules_numbers(target, name):
    TARGET_CHECKS[target](PARSED[name])


@pytest.mark.parametrize("source, function", PROBLEMS, ids=IDS)
def test_hessian_vector_products(source, function):
    problem = matcalc.parse(source)
    inputs = _inputs(problem)
    module = matcalc.compile(problem, hvp=True)
    rng = np.random.default_rng(5)
    v = {w: rng.standard_normal(np.shape(inputs[w])) for w in problem.wrt}
    h = 1e-6

    def grad(shift):
        return module.value_and_grad(**{n: x + shift * v[n] if n in v else x
                                        for n, x in inputs.items()})[1]
    up, down = grad(h), grad(-h)
    got = module.hvp(v if len(v) > 1 else v[problem.wrt[0]], **inputs)
    got = got if isinstance(got, dict) else {problem.wrt[0]: got}
    for w in problem.wrt:
        close(got[w], (up[w] - down[w]) / (2 * h), 1e-6)


# ------------------------------------------------------------------ errors ---

ERRORS = [
    ("X: 3 x D\nf = sum(X[5])", 2, 9, ["index 5 is out of range", "size 3"]),
    # out of range at every size (a traceback from `check` before)
    ("x: N\nf = sum(x[N])", 2, 9, ["index N is out of range", "size N"]),
    ("X: N x D\nf = X[0, D - 1] + X[-N - 1, 0]", 2, 19, ["index -N - 1 is out of range"]),
    ("X: N x D\nf = sum(X[0, 0, 0])", 2, 9, ["too many indices: 3 for a N x D array"]),
    ("X: N x D\nf = sum(X[..., ...])", 2, 9, ["only one '...'"]),
    ("X: N x D\nf = sum(X[::0])", 2, 9, ["step cannot be 0"]),
    ("X: 3 x D\nf = sum(X[2:1])", 2, 9, ["slice 2:1", "empty"]),
    ("X: N x D\nf = sum(X[::2])", 2, 9, ["not a whole expression in N", "fixed size"]),
    ("X: N x D\nx: N\nf = sum(X[:x])", 3, 9, ["an index is an integer"]),
    ("X: N x D\nf = sum(X[:, 0.5])", 2, 9, ["an index is an integer"]),
    ("X: B x T x D\nf = sum(reshape(X, (B, T, 7)))", 2, 9,
     ["cannot reshape B x T x D", "B x T x 7"]),
    ("X: B x T x D\nf = sum(reshape(X, (B, -1, -1)))", 2, 9, ["only one size can be -1"]),
    ("X: B x T x D\nH = 2\nf = sum(reshape(X, (B, T, H, D / H)))", 3, 20,
     ["D/2 is not a whole number", "D = H * E"]),
    ("D = H * E\nX: B x T x D\nf = sum(X)", 1, 9,
     ["the size E cannot be read from the inputs' shapes", "E = 4"]),
    ("tokens: B x T\nE: V x D\nf = sum(E[tokens])", 3, 9,
     ["an index array must be an integer input", "tokens: B x T int"]),
    ("tokens: B x T int\nX: B x T\nf = sum(X * tokens)", 3, 9,
     ["tokens is an integer input", "E[tokens]"]),
    ("tokens: B x T int\nE: V x D\nf = sum(E[tokens])\nwrt E, tokens", 4, 8,
     ["tokens is an integer input", "no derivative"]),
    ("E: V x D\ntokens: B int\nf = sum(E[tokens, 0])", 3, 9, ["first axis alone"]),
    ("k: scalar int\nf = k", 1, 11, ["an integer input is an array of indices"]),
    ("A: N x D\nB: M x K\nf = sum(concatenate((A, B), axis=0))", 3, 9,
     ["concatenate along axis 0: N x D and M x K differ on another axis"]),
    ("A: N x D\nf = sum(concatenate(A, axis=0))", 2, 9, ["takes a tuple of arrays"]),
    ("A: N x D\nf = sum(concatenate((A, A), axis=2))", 2, 9, ["axis 2 is out of range"]),
    ("x: D\ny: N\nf = sum(stack((x, y)))", 3, 9, ["stack takes a tuple of arrays of one shape"]),
]


def test_slice_bounds_past_an_end_are_clipped():
    """A bound past an end at every size is clipped, as NumPy does: x[:N + 1]
    is x[:N] (whose shape was N + 1, so `x[:N + 1] @ x` failed in the
    module's matmul), x[-N - 2:] is x, x[N + 1::-1] is x[::-1], and the key
    writes them None, which array-api-strict (that leaves such bounds
    unspecified) takes; x[:-N] and x[:2 * N:-1] are empty at every size."""
    source = "x: N\nf = x[:N + 1] @ x + x[-N - 2:] @ x[N + 1::-1]\n"
    x = np.arange(1.0, 5.0)
    want = x @ x + x @ x[::-1]
    assert matcalc.grad(source)["x"] is not None
    close(matcalc.compile(source).forward(x)[0], want)
    xp = pytest.importorskip("array_api_strict")
    value, grads = matcalc.compile(source, target="array-api").value_and_grad(x=xp.asarray(x))
    close(np.asarray(value._array), want)
    close(np.asarray(grads["x"]._array), 2 * x + 2 * x[::-1])
    for empty in ("x[:-N]", "x[:2 * N:-1]"):
        assert_refused(f"x: N\nf = sum({empty})", 2, 9, ["is empty"])


@pytest.mark.parametrize("source, line, column, words", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_is_refused_at_its_place(source, line, column, words):
    assert_refused(source, line, column, words)


def test_an_integer_input_is_checked_by_the_generated_modules():
    problem = matcalc.parse("tokens: B x T int\nE: V x D\nf = sum(E[tokens] ** 2)")
    inputs = _inputs(problem)
    for target in ("numpy", "array-api", "torch", "jax"):
        if target == "torch":
            pytest.importorskip("torch")
        module = matcalc.compile(problem, target=target)
        with pytest.raises(TypeError, match="tokens: expected an integer array"):
            module.value_and_grad(tokens=inputs["tokens"].astype(float), E=inputs["E"])
        with pytest.raises(ValueError, match="tokens: expected shape"):
            module.value_and_grad(tokens=inputs["tokens"][0], E=inputs["E"])
    with pytest.raises(MatcalcError, match="pass an integer array"):
        matcalc.check(problem, inputs={"tokens": inputs["tokens"].astype(float)})
    with pytest.raises(MatcalcError, match="indices outside the 5 entries"):
        matcalc.check(problem, dims={"V": 5}, inputs={"tokens": np.full((2, 3), 5)})
    assert matcalc.check(problem, dims={"V": 5}, inputs={"tokens": np.full((2, 3), -5)}).ok


def test_an_integer_input_is_never_differentiated():
    problem = matcalc.parse("tokens: B x T int\nE: V x D\nf = sum(E[tokens] ** 2)")
    assert problem.wrt == ("E",)
    with pytest.raises(MatcalcError, match="integer input"):
        problem.with_wrt("tokens")


def test_check_draws_indices_within_the_axis_they_index():
    problem = matcalc.parse("E: V x D\nF: 2 x D\ntokens: 50 int\nf = sum(E[tokens] * F[tokens])")
    for seed in range(3):
        values = draw(problem, sizes(problem), np.random.default_rng(seed))
        assert values["tokens"].dtype.kind == "i"
        assert set(values["tokens"]) == {0, 1}  # below the smaller table's 2 rows


def test_repeated_tokens_add_up():
    problem = matcalc.parse("E: 3 x 2\ntokens: 4 int\nf = sum(E[tokens])")
    _, grads = matcalc.compile(problem).value_and_grad(E=np.zeros((3, 2)),
                                                       tokens=np.array([2, 0, 2, 2]))
    np.testing.assert_array_equal(grads["E"], [[1, 1], [0, 0], [3, 3]])


def test_notation():
    from matcalc.targets.latex import to_latex
    from matcalc.targets.unicode import to_unicode
    p = matcalc.parse("X: B x T x D\nw: D\nf = sum(tanh(X[:, -1] * w))")
    g = matcalc.grad(p)
    assert str(g["w"]) == "sum((1 - tanh(X[:, -1] * w) ** 2) * X[:, -1], axis=0)"
    assert str(g["X"]) == "zeros(B, T, D).at[:, -1].set((1 - tanh(X[:, -1] * w) ** 2) * w)"
    assert r"X\left[:, -1\right]" in to_latex(g["w"])
    assert r"\mathbf{0}_{B \times T \times D}.\mathrm{at}\left[:, -1\right]" in to_latex(g["X"])
    assert "X[:, -1]" in to_unicode(g["w"])
    q = matcalc.parse("tokens: B x T int\nE: V x D\nf = sum(E[tokens] ** 2)")
    assert str(matcalc.grad(q)["E"]) == "zeros(V, D).at[tokens].add(2 * E[tokens])"


def test_views_simplify():
    p = matcalc.parse("x: N\nX: N x D\nf = sum(x[:, None] * X) + sum(X[:] * X[...])")
    assert str(p.output.args[0]) == "sum(x[:, None] * X) + sum(X ** 2)"
    q = matcalc.parse("X: B x T x D\nf = sum(reshape(reshape(X, (B, -1)), (B, T, D)) * X)")
    assert str(q.output.args[0]) == "sum(X ** 2)"


@pytest.mark.parametrize("source, function, wrt", [
    ("X: N x D\nw: D\nf = sum(tanh(X[-1] * w)) + sum(X[1:, ::-1] * X[:-1] ** 2)",
     lambda v: jnp.sum(jnp.tanh(v["X"][-1] * v["w"]))
     + jnp.sum(v["X"][1:, ::-1] * v["X"][:-1] ** 2), "X"),
    ("tokens: B x T int\nE: V x D\nf = sum(tanh(E[tokens]) ** 2)",
     lambda v: jnp.sum(jnp.tanh(v["E"][v["tokens"]]) ** 2), "E"),
    ("H = 2\nD = H * E\nX: B x D\nf = sum(exp(reshape(X, (B, H, E))[:, 0]) * X[:, -1, None])",
     lambda v: jnp.sum(jnp.exp(v["X"].reshape(v["X"].shape[0], 2, -1)[:, 0])
                       * v["X"][:, -1, None]), "X"),
])
def test_full_hessian_matches_jax(source, function, wrt):
    jax.config.update("jax_enable_x64", True)
    problem = matcalc.parse(source).with_wrt(wrt)
    inputs = _inputs(problem)
    got = matcalc.compile(problem, hessian=True).hessian(**inputs)

    def of(x):
        return function({**{n: jnp.asarray(v) for n, v in inputs.items()}, wrt: x})
    close(got, jax.jit(jax.hessian(of))(jnp.asarray(inputs[wrt])))


def test_a_problem_with_a_product_dimension_reads_back():
    p = matcalc.parse("H = 2\nD = H * E\nX: B x T x D\nw: D\n"
                      "Q = reshape(X * w, (B, T, H, E))\nf = sum(Q ** 2)")
    assert str(p).splitlines()[:3] == ["H = 2", "D = E * H", "X: B x T x D"]
    assert matcalc.parse(str(p)).output is p.output
    q = matcalc.parse("tokens: B x T int\nE: V x D\nf = sum(E[tokens] ** 2)")
    assert matcalc.parse(str(q)).output is q.output


@pytest.mark.parametrize("source, function", PROBLEMS, ids=IDS)
def test_text_reads_back(source, function):
    problem = matcalc.parse(source)
    for _, g in matcalc.grad(problem):
        assert problem.expr(str(g)) is g, str(g)


def test_the_adjoints_are_written_as_jax_writes_them():
    p = matcalc.parse("X: B x T x D\nG: B x D\ntokens: B int\nH: B x D\n"
                      "f = sum(zeros(B, T, D).at[:, -1].set(G) * X) "
                      "+ sum(zeros(B, D).at[tokens].add(H) ** 2)")
    result = matcalc.check(p)
    assert result.ok, str(result)
    assert str(matcalc.grad(p)["G"]) == "X[:, -1]"


def _scatter_reference(g, idx, shape):
    want = np.zeros(shape)
    np.add.at(want, idx, np.broadcast_to(g, idx.shape + shape[1:]))
    return want


@pytest.mark.parametrize("index_type", [np.int64, np.int8])  # int8: row * width overflows
@pytest.mark.parametrize("rows", [5, 1000])  # counts @ g, and bincount (a long table)
@pytest.mark.parametrize("g_shape", [(4, 3, 2), (4, 1, 2), (1, 3, 2), (1, 1, 2), (4, 3, 1), (2,)])
def test_numpy_scatter_add_counts_repeated_gradients(g_shape, rows, index_type):
    from matcalc.targets import numpy_forms
    namespace = {"np": np}
    exec(numpy_forms.HELPERS["scatter_add"], namespace)
    rng = np.random.default_rng(0)
    idx, g = rng.integers(-5, 5, size=(4, 3), dtype=index_type), rng.standard_normal(g_shape)
    want = _scatter_reference(g, idx, (rows, 2))
    for dtype in (np.float64, np.float32):
        got = namespace["_scatter_add"](g.astype(dtype), idx, (rows, 2))
        assert got.dtype == dtype
        close(got, want, 1e-6 if dtype == np.float32 else 1e-12)


def _array_api_scatter_add():
    from matcalc.targets import array_api_forms
    namespace = {"_device_of": pytest.importorskip("array_api_compat").device}
    exec(array_api_forms.HELPERS["scatter_add"], namespace)
    return namespace["_scatter_add"]


@pytest.mark.parametrize("library", ["numpy", "array_api_strict", "torch", "jax.numpy"])
@pytest.mark.parametrize("shape, idx_shape, g_shape", [
    ((5, 2, 3), (4, 3), (4, 1, 2, 3)),  # a mean-pool's gradient into a 5 x 2 x 3 table
    ((5,), (7,), (1,)),                 # one number into every named row
    ((2 ** 20,), (10,), (10,)),         # a long table: the one-hot matrix in three blocks
])
def test_array_api_scatter_add_on_each_library(library, shape, idx_shape, g_shape):
    """Each library's way (bincount, index_add, .at[].add, blocked one-hot)
    adds up repeated and negative indices as np.add.at does."""
    from array_api_compat import array_namespace
    lib = pytest.importorskip(library)
    if library == "jax.numpy":
        jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(1)
    idx = rng.integers(-5, 5, size=idx_shape)
    g = rng.standard_normal(g_shape)
    xg = lib.asarray(g)
    got = _array_api_scatter_add()(array_namespace(xg), xg, lib.asarray(idx), shape)
    assert tuple(got.shape) == shape and got.dtype == xg.dtype
    close(np.asarray(got), _scatter_reference(g, idx, shape), 1e-12)


def test_check_sizes_fit_the_fixed_indices():
    problem = matcalc.parse("W: K x D\nb: K\nx: D\nf = sum(W @ x + b[9, None]) + sum(x[-6:])")
    assert sizes(problem)["K"] >= 10 and sizes(problem)["D"] >= 6
    assert matcalc.check(problem).ok
    with pytest.raises(MatcalcError, match="K must be at least 10"):
        matcalc.check(problem, dims={"K": 3})


@pytest.mark.parametrize("index_type", ["uint8", "int8", "int16", "int32"])
@pytest.mark.parametrize("target", ["numpy", "array-api", "torch"])
def test_small_integer_types_index_as_int64_does(target, index_type):
    """Narrow index types give the gradient int64 indices give: row * width
    never overflows, and PyTorch never reads uint8 as a mask."""
    if target != "numpy":
        pytest.importorskip("torch" if target == "torch" else "array_api_compat")
    text = "E: V x D\ntokens: N int\nf = sum(tanh(E[tokens]) ** 2)"
    rng = np.random.default_rng(3)
    E, tokens = rng.standard_normal((7, 70)), rng.integers(0, 7, size=40)
    want = matcalc.compile(text).value_and_grad(E=E, tokens=tokens)[1]["E"]
    namespace = {}
    exec(matcalc.codegen(text, target=target), namespace)
    convert = (lambda a: a) if target != "torch" else __import__("torch").asarray
    _, grads = namespace["value_and_grad"](E=convert(E), tokens=convert(tokens.astype(index_type)))
    close(np.asarray(grads["E"]), want, 1e-12)
