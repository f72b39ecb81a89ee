"""An integer input's values must lie within the axes it indexes.

For `tokens` indexing axes of sizes n1, n2, ... the generated modules accept
-n <= i < n, n = min(n1, n2, ...) read from the inputs' shapes (NumPy's
rule: a negative index counts from the end), and refuse anything else with
a one-line ValueError naming the input and the bound: the NumPy and PyTorch
targets always (PyTorch: not while torch.compile traces), the JAX target on
concrete arrays (under jax.jit the values are tracers: JAX clamps), the
array-API target on NumPy arrays and PyTorch tensors (a Dask graph stays
lazy). Negative indices give the gradient of the index they count to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import matcalc

CLASSIFIER = (Path(__file__).parent.parent / "examples" / "embedding_classifier.mc").read_text()
SIZES = {"B": 4, "T": 3, "V": 7, "D": 2, "C": 3}
TARGETS = ["numpy", "array-api", "torch", "jax"]


def _library(target):
    """The target's array type, from NumPy arrays."""
    if target == "torch":
        return pytest.importorskip("torch").as_tensor
    if target == "jax":
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        return jax.numpy.asarray
    return np.asarray


def _compiled(target, source=CLASSIFIER):
    """The module of `source` for `target`, skipped without the library the
    module imports."""
    if target != "numpy":
        pytest.importorskip({"array-api": "array_api_compat"}.get(target, target))
    return matcalc.compile(source, target=target)


def _classifier(seed=0):
    rng = np.random.default_rng(seed)
    B, T, V, D, C = SIZES.values()
    return {"tokens": rng.integers(0, V, (B, T)), "labels": rng.integers(0, C, B),
            "E": rng.standard_normal((V, D)), "W": rng.standard_normal((D, C)),
            "b": rng.standard_normal(C)}


def _with(inputs, name, value, at=(1, 2)):
    x = inputs[name].copy()
    x[at[:x.ndim]] = value
    return {**inputs, name: x}


def _run(module, inputs, target):
    to = _library(target)
    return module.value_and_grad(**{n: to(x) for n, x in inputs.items()})


def _refused(module, inputs, target) -> str:
    with pytest.raises(ValueError) as info:
        _run(module, inputs, target)
    return str(info.value)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name, value, bound", [
    ("tokens", 7, "[-V, V) = [-7, 7)"), ("tokens", -8, "[-V, V) = [-7, 7)"),
    ("tokens", 10 ** 9, "[-V, V) = [-7, 7)"),
    ("labels", 3, "[-C, C) = [-3, 3)"), ("labels", -4, "[-C, C) = [-3, 3)")])
def test_a_value_outside_the_axis_is_refused_naming_the_input(target, name, value, bound):
    module = _compiled(target)
    message = _refused(module, _with(_classifier(), name, value), target)
    assert message == f"{name}: values must lie in {bound}, got {value}"


@pytest.mark.parametrize("target", TARGETS)
def test_the_general_path_refuses_too(target):
    """Lists (converted by the general loop of `_checked`) are checked."""
    module = _compiled(target)
    inputs = {n: x.tolist() if n in ("tokens", "E") else x for n, x in _classifier().items()}
    inputs["tokens"][0][0] = -9
    to = _library(target)
    with pytest.raises(ValueError, match=r"^tokens: values must lie in \[-V, V\) = \[-7, 7\), "
                                         r"got -9$"):
        module.value_and_grad(**{n: x if isinstance(x, list) else to(x)
                                 for n, x in inputs.items()})


def test_unsigned_indices_are_checked():
    module = matcalc.compile(CLASSIFIER)
    inputs = _classifier()
    inputs["tokens"] = _with(inputs, "tokens", 200)["tokens"].astype(np.uint8)
    assert _refused(module, inputs, "numpy") == \
        "tokens: values must lie in [-V, V) = [-7, 7), got 200"


@pytest.mark.parametrize("target", TARGETS)
def test_a_refused_input_is_read_once(target):
    """The usual case refuses out-of-range values itself: its error is not
    taken for a bad rank, which would check the values again."""
    module = _compiled(target)
    calls = []

    def counted(name, x, n, bound):
        calls.append(name)
        return checked(name, x, n, bound)
    checked, module._in_range = module._in_range, counted
    _refused(module, _with(_classifier(), "labels", 3), target)
    assert calls == ["tokens", "labels"]


def _wrapped(inputs):
    return {**inputs, "tokens": inputs["tokens"] % SIZES["V"],
            "labels": inputs["labels"] % SIZES["C"]}


@pytest.mark.parametrize("target", TARGETS)
def test_the_edges_are_accepted_and_negative_indices_count_from_the_end(target):
    """-n and n - 1 are valid; the value and gradients at negative indices
    are those at the indices they count to (i + n)."""
    module = _compiled(target)
    inputs = _classifier(1)
    inputs["tokens"][0, :2] = [-7, 6]
    inputs["tokens"][1, :2] = [-1, -7]
    inputs["labels"][:2] = [-3, 2]
    assert (inputs["tokens"] < 0).any() and (inputs["labels"] < 0).any()
    value, grads = _run(module, inputs, target)
    want, want_grads = matcalc.compile(CLASSIFIER).value_and_grad(**_wrapped(inputs))
    np.testing.assert_allclose(np.asarray(value), want, rtol=1e-12)
    for name, g in want_grads.items():
        np.testing.assert_allclose(np.asarray(grads[name]), g, rtol=1e-12, atol=1e-15,
                                   err_msg=f"{target}: d{name}")


# One integer input indexing a table of V rows and one of 3: its bound is
# min(3, V), at run time.
TWO_TABLES = "E: V x D\nF: 3 x D\ntokens: N int\nf = sum(tanh(E[tokens]) * F[tokens])"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("rows, value, shown", [
    (7, 3, "[-min(3, V), min(3, V)) = [-3, 3)"), (7, -4, "[-min(3, V), min(3, V)) = [-3, 3)"),
    (2, 2, "[-min(3, V), min(3, V)) = [-2, 2)"), (2, -3, "[-min(3, V), min(3, V)) = [-2, 2)")])
def test_an_input_indexing_two_tables_takes_the_smaller(target, rows, value, shown):
    module = _compiled(target, TWO_TABLES)
    rng = np.random.default_rng(0)
    inputs = {"E": rng.standard_normal((rows, 2)), "F": rng.standard_normal((3, 2)),
              "tokens": np.array([0, 1, value])}
    assert _refused(module, inputs, target) == f"tokens: values must lie in {shown}, got {value}"
    t = np.array([-min(rows, 3), min(rows, 3) - 1, 0, -1])  # -1: a row of each table
    value, grads = _run(module, {**inputs, "tokens": t}, target)
    E, F = inputs["E"], inputs["F"]
    want = {"E": np.zeros_like(E), "F": np.zeros_like(F)}  # each wraps by its own rows
    np.add.at(want["E"], t, (1 - np.tanh(E[t]) ** 2) * F[t])
    np.add.at(want["F"], t, np.tanh(E[t]))
    np.testing.assert_allclose(np.asarray(value), np.sum(np.tanh(E[t]) * F[t]), rtol=1e-12)
    for name, g in want.items():
        np.testing.assert_allclose(np.asarray(grads[name]), g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("source, inputs, message", [
    # a fixed size: the bound as declared is the bound
    ("E: 5 x D\ntokens: N int\nf = sum(E[tokens] ** 2)",
     {"E": np.ones((5, 2)), "tokens": np.array([0, 5])}, "tokens: values must lie in [-5, 5), got 5"),
    # a scatter-add written in the source: tokens index its B rows
    ("G: N x D\ntokens: N int\nX: B x D\nf = sum(zeros(B, D).at[tokens].add(G) * X)",
     {"G": np.ones((3, 2)), "tokens": np.array([0, 1, -5]), "X": np.ones((4, 2))},
     "tokens: values must lie in [-B, B) = [-4, 4), got -5"),
    # a table of M + N rows
    ("P: M x D\nQ: N x D\ntokens: K int\nf = sum(concatenate((P, Q), axis=0)[tokens] ** 2)",
     {"P": np.ones((2, 2)), "Q": np.ones((3, 2)), "tokens": np.array([4, 5])},
     "tokens: values must lie in [-(M + N), M + N) = [-5, 5), got 5"),
])
@pytest.mark.parametrize("target", TARGETS)
def test_the_bound_is_read_from_the_axis_indexed(source, inputs, message, target):
    assert _refused(_compiled(target, source), inputs, target) == message


def test_an_unused_bound_writes_no_check():
    """Without an integer input the module holds no range check."""
    assert "_in_range" not in matcalc.codegen("X: N x D\nf = sum(X ** 2)")
    assert "_in_ranges(arrays)" in matcalc.codegen(CLASSIFIER)


def test_jax_under_jit_is_not_checked_and_still_runs():
    """Under jax.jit the indices are tracers: nothing is read (JAX clamps
    an index out of range); an eager call of `f` is checked."""
    jax = pytest.importorskip("jax")
    _library("jax")
    module = matcalc.compile(CLASSIFIER, target="jax")
    wrt = [module.INPUTS.index(w) for w in module.WRT]
    run = jax.jit(jax.value_and_grad(module.f, argnums=wrt))
    inputs = _classifier(1)
    inputs["tokens"][0, :2] = [-7, 6]
    args = [jax.numpy.asarray(inputs[n]) for n in module.INPUTS]
    value, grads = run(*args)
    want, want_grads = matcalc.compile(CLASSIFIER).value_and_grad(**_wrapped(inputs))
    np.testing.assert_allclose(np.asarray(value), want, rtol=1e-12)
    for w, g in zip(module.WRT, grads):
        np.testing.assert_allclose(np.asarray(g), want_grads[w], rtol=1e-12, atol=1e-15)
    bad = [jax.numpy.asarray(_with(inputs, "tokens", 9)[n]) for n in module.INPUTS]
    run(*bad)  # a tracer's values are not known: JAX's clamp, no error
    with pytest.raises(ValueError, match="tokens: values must lie in"):
        module.f(*bad)


def test_torch_compile_traces_without_the_check():
    """torch.compile(fullgraph=True) traces `f`: the check reads no values
    while it traces (a data-dependent branch would break the graph)."""
    torch = pytest.importorskip("torch")
    source = "E: V x D\ntokens: N int\nf = sum(tanh(E[tokens]) ** 2)"
    module = matcalc.compile(source, target="torch")
    E = torch.tensor(np.random.default_rng(0).standard_normal((5, 2)), requires_grad=True)
    tokens = torch.tensor([0, 4, -5, -1])
    loss = torch.compile(module.f, fullgraph=True)(E, tokens)
    (grad,) = torch.autograd.grad(loss, E)
    want, want_grads = matcalc.compile(source).value_and_grad(
        E=E.detach().numpy(), tokens=tokens.numpy() % 5)
    np.testing.assert_allclose(loss.detach().numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(grad.numpy(), want_grads["E"], rtol=1e-12)
    with pytest.raises(ValueError, match="tokens: values must lie in"):
        module.f(E, torch.tensor([5]))


def test_dask_stays_lazy_and_unchecked():
    """The array-API module reads no values of a Dask array: the graph is
    built without a computation, as for any other input."""
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    module = _compiled("array-api")
    inputs = _classifier()

    def no_compute(*args, **kwargs):
        raise AssertionError("something was computed before .compute()")
    with dask.config.set(scheduler=no_compute):
        value, grads = module.value_and_grad(**{n: da.from_array(x, chunks=2)
                                                for n, x in inputs.items()})
    want, _ = matcalc.compile(CLASSIFIER).value_and_grad(**inputs)
    np.testing.assert_allclose(value.compute(scheduler="sync"), want, rtol=1e-12)

