"""`--target array-api`: every example and a sample of the property
strategy's problems, generated once, run on array-api-strict (any call
outside the standard fails), NumPy, PyTorch, JAX and Dask (the sample:
the problems covering its features, `corpus_checks.covering`), each against the
NumPy target's value, gradients, Hessian-vector product and Hessian. Results
stay in the inputs' library and floating type; on Dask nothing is computed
before `.compute()`. A backend that is not installed skips its tests by name.
"""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.checks import verify
from matcalc.errors import MatcalcError
from corpus_checks import backend, converted, covering, kept
from strategies import RandomSource, build_problem

pytest.importorskip("array_api_compat")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.mc"))
SAMPLED = [build_problem(RandomSource(seed)) for seed in range(30)]
RTOL = 1e-9  # float64 on every library: only the rounding of another order


def _example_inputs(text: str) -> dict:
    problem = matcalc.parse(text)
    return verify.draw(problem, verify.sizes(problem), np.random.default_rng(0))


CASES = [pytest.param(p.read_text(encoding="utf-8"), None, id=p.stem) for p in EXAMPLES]
CASES += [pytest.param(gp.text, gp, id=f"sample{k}") for k, gp in enumerate(SAMPLED)]
# Every library runs every example; array-api-strict and NumPy every sampled
# problem, PyTorch, JAX and Dask those covering the sample's features.
COVERING = set(covering(kept({f"sample{k}": matcalc.parse(gp.text)
                              for k, gp in enumerate(SAMPLED)}), "array-api"))
ON_LIBRARIES = [pytest.param(*case.values, library, id=f"{case.id}-{library}")
                for library in ["strict", "numpy", "torch", "jax", "dask"] for case in CASES
                if library in ("strict", "numpy") or case.values[1] is None or case.id in COVERING]


@functools.lru_cache(maxsize=None)
def _modules(text: str):
    """The NumPy and array-API modules of a problem, with the HVP and the
    Hessian where the function is a scalar (and the Hessian is defined: by
    the first variable, or the mixed block of the first two; every block
    is tested in test_framework_targets), generated once for every library."""
    problem = matcalc.parse(text)
    scalar = not problem.output.shape
    pair = ",".join(problem.wrt[:2])
    for extras in ([dict(hvp=True, hessian=pair)] if scalar else []) + [{}]:
        try:
            return tuple(matcalc.compile(problem, target=t, **extras)
                         for t in ("numpy", "array-api")), extras
        except MatcalcError:
            continue
    raise AssertionError("no module")


class _Computed(Exception):
    """Raised by the Dask scheduler set while the graph is built."""


def _no_compute(*args, **kwargs):
    raise _Computed("something was computed before .compute()")


def _run(module, inputs: dict, v: dict | None, extras: dict, dout=None) -> dict:
    """Value, gradients (against dout), HVP and Hessian of a module, by name."""
    value, grads = module.value_and_grad(dout, **inputs)
    out = {"value": value, **{f"d{n}": g for n, g in grads.items()}}
    if extras:
        out.update({f"Hv{n}": h for n, h in _as_dict(module.hvp(v, **inputs)).items()})
        for n, h in _as_dict(module.hessian(**inputs)).items():  # blocks by two names
            out.update({f"H{n},{m}": b for m, b in h.items()} if isinstance(h, dict)
                       else {f"H{n}": h})
    return out


def _as_dict(result) -> dict:
    return result if isinstance(result, dict) else {"": result}


def _inputs(text: str, gp) -> dict:
    values = gp.inputs() if gp is not None else _example_inputs(text)
    return {n: np.asarray(x) if np.asarray(x).dtype.kind == "i" else  # indices stay integers
            np.asarray(x, dtype=np.float64) for n, x in values.items()}


@pytest.mark.parametrize("text, gp, library", ON_LIBRARIES)
def test_array_api_module_matches_numpy_target(text, gp, library):
    """Values and derivatives equal the NumPy target's, as the library's
    arrays (Dask: a lazy graph, nothing computed before .compute())."""
    to, back, native = backend(library, text)
    (reference, portable), extras = _modules(text)
    inputs = _inputs(text, gp)
    rng = np.random.default_rng(1)
    wrt = matcalc.parse(text).wrt
    v = {n: rng.standard_normal(np.shape(inputs[n])) for n in wrt} if extras else None
    v = v[wrt[0]] if v is not None and len(wrt) == 1 else v  # one variable: v itself
    dout = _dout(reference, inputs, rng)
    want = _run(reference, inputs, v, extras, dout)
    args = (converted(inputs, to), converted(v, to), extras, converted(dout, to))
    if library == "dask":
        import dask
        with dask.config.set(scheduler=_no_compute):
            got = _run(portable, *args)
    else:
        got = _run(portable, *args)
    assert set(got) == set(want)
    for name, x in inputs.items():  # NumPy and PyTorch share the inputs' memory
        np.testing.assert_array_equal(x, _inputs(text, gp)[name], err_msg=f"{name} changed")
    for key, value in got.items():
        assert native(value), f"{key}: {type(value).__name__}, not the inputs' library"
        value, expected = back(value), np.asarray(want[key])
        assert value.dtype == np.float64, key
        scale = max(1.0, float(np.max(np.abs(expected), initial=0)))
        np.testing.assert_allclose(value, expected, rtol=RTOL, atol=RTOL * scale, err_msg=key)


def _dout(module, inputs: dict, rng):
    """A random ∂L/∂value for an array-valued function, else None."""
    value, _ = module.forward(*(inputs[n] for n in module.INPUTS))
    return rng.standard_normal(np.shape(value)) if np.ndim(value) else None


@pytest.mark.parametrize("library", ["strict", "numpy", "torch", "jax"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_float32_stays_float32(path, library):
    """float32 inputs give float32 values and gradients, equal to the
    float64 ones to float32's precision."""
    to, back, native = backend(library)
    text = path.read_text(encoding="utf-8")
    (reference, portable), extras = _modules(text)
    inputs = _inputs(text, None)
    dout = _dout(reference, inputs, np.random.default_rng(1))
    want = _run(reference, inputs, None, {}, dout)
    got = _run(portable, {n: to(x if x.dtype.kind == "i" else x.astype(np.float32))
                          for n, x in inputs.items()}, None, {},
               None if dout is None else to(dout.astype(np.float32)))
    for key, value in got.items():
        assert native(value), key
        value, expected = back(value), np.asarray(want[key])
        assert value.dtype == np.float32, key
        scale = max(1.0, float(np.max(np.abs(expected), initial=0)))
        np.testing.assert_allclose(value, expected, rtol=1e-3, atol=1e-3 * scale, err_msg=key)


# a - A @ B, written `t = A @ (-B)` then `t += a`: a matrix a, a broadcast
# vector a, the left operand negated.
SUBTRACTED_PRODUCTS = [
    ("X: m x n\nU: m x k\nV: n x k\nf = sum((X - U @ V.T) ** 2)\nwrt U, V\n", "t0 += X"),
    ("X: N x D\nW: D x K\nb: K\nS = b - X @ W\nwrt X, W, b\n", "S += b"),
    ("y: K\nx: D\nA: D x K\nf = sum((y - x @ A) ** 2)\nwrt x, A\n", "t0 = (-x) @ A"),
]


@pytest.mark.parametrize("library", ["strict", "numpy", "torch", "jax", "dask"])
@pytest.mark.parametrize("text, line", SUBTRACTED_PRODUCTS, ids=["matrix", "vector", "left"])
def test_subtracted_product_is_updated_in_place_in_the_wider_type(text, line, library):
    """a - A @ B adds a into the new product (JAX and Dask rebind): with the
    first input float64 and the others float32, everything is computed in
    float64 (never a float64 a added into a float32 product), equal to the
    NumPy target's, and no input changes."""
    to, back, native = backend(library, text)
    (reference, portable), extras = _modules(text)
    assert line in matcalc.codegen(text, target="array-api")
    inputs = _inputs(text, None)
    mixed = {n: to(x.astype(np.float32 if k else np.float64))
             for k, (n, x) in enumerate(inputs.items())}
    dout = _dout(reference, inputs, np.random.default_rng(1))
    want = _run(reference, {n: back(x) for n, x in mixed.items()}, None, {}, dout)
    got = _run(portable, mixed, None, {}, None if dout is None else to(dout))
    for name, x in inputs.items():
        np.testing.assert_array_equal(back(mixed[name]), x.astype(back(mixed[name]).dtype),
                                      err_msg=f"{name} changed")
    for key, value in got.items():
        assert native(value), key
        value, expected = back(value), np.asarray(want[key])
        assert value.dtype == np.float64, key
        scale = max(1.0, float(np.max(np.abs(expected), initial=0)))
        np.testing.assert_allclose(value, expected, rtol=RTOL, atol=RTOL * scale, err_msg=key)


def test_target_is_chosen_by_name_and_numpy_is_the_default():
    text = (EXAMPLES[0]).read_text(encoding="utf-8")
    assert matcalc.codegen(text) == matcalc.codegen(text, target="numpy")
    portable = matcalc.codegen(text, target="array-api")
    assert "array_namespace" in portable and "np." not in portable
    docstring = portable.split('"""')[1]
    assert "Needs array-api-compat" in docstring and "array-api" not in matcalc.codegen(text)
    with pytest.raises(MatcalcError, match="unknown code target .cupy.; the targets are numpy, array-api"):
        matcalc.codegen(text, target="cupy")


def test_wrong_shape_names_the_input():
    """The portable input check: shapes only, a ValueError naming the input."""
    xp = pytest.importorskip("array_api_strict")
    module = matcalc.compile(AFFINE, target="array-api")
    with pytest.raises(ValueError, match=r"b: expected shape \(K,\) = \(3,\), got \(4,\)"):
        module.forward(xp.ones((5, 2)), xp.ones((2, 3)), xp.ones(4))
    value, _ = module.forward([[1.0, 2.0]], [[1.0], [0.0]], [0.5])  # array-likes
    assert value.shape == (1, 1)


AFFINE = "X: N x D\nW: D x K\nb: K\nS = X @ W + b\nwrt X, W, b\n"


def test_backends_extra_is_declared():
    """The libraries these tests run on are one extra, which CI installs;
    PyTorch is its own extra (its PyPI wheel brings the CUDA libraries),
    which CI installs from a local wheel only."""
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["optional-dependencies"]
    for name in ("array-api-compat", "array-api-strict", "dask", "jax"):
        assert any(r.startswith(name) for r in extras["backends"]), name
    assert [r for r in extras["torch"] if r.startswith("torch")]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    installed = re.search(r"pip install -e '\.\[([\w,]+)\]'", ci)
    assert installed and {"test", "backends"} <= set(installed.group(1).split(","))
    # PyTorch only from a wheel already on the machine (never PyPI's CUDA one)
    assert "pip install --no-index --no-deps 'torch>=2.5'" in ci


def test_dask_data_with_numpy_parameters_stays_lazy():
    """X and y as Dask arrays, w a NumPy array (the usual recipe): the
    gradient and HVP are Dask graphs, computed only by .compute()."""
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    text = (ROOT / "examples" / "logistic.mc").read_text(encoding="utf-8")
    reference = matcalc.compile(text, hvp=True)
    portable = matcalc.compile(text, target="array-api", hvp=True)
    rng = np.random.default_rng(0)
    X, w, v = rng.standard_normal((40, 3)), rng.standard_normal(3), rng.standard_normal(3)
    y = np.sign(rng.standard_normal(40))
    with dask.config.set(scheduler=_no_compute):
        _, grads = portable.value_and_grad(X=da.from_array(X, chunks=(8, 3)),
                                           y=da.from_array(y, chunks=8), w=w)
        hv = portable.hvp(v, X=da.from_array(X, chunks=(8, 3)), y=da.from_array(y, chunks=8), w=w)
    assert isinstance(grads["w"], da.Array) and isinstance(hv, da.Array)
    np.testing.assert_allclose(grads["w"].compute(scheduler="sync"),
                               reference.value_and_grad(X=X, y=y, w=w)[1]["w"], rtol=RTOL)
    np.testing.assert_allclose(hv.compute(scheduler="sync"),
                               reference.hvp(v, X=X, y=y, w=w), rtol=RTOL)


ARRAY_VALUED = [c for c in CASES if matcalc.parse(c.values[0]).output.shape]


@pytest.mark.parametrize("library", ["strict", "jax", "dask"])
@pytest.mark.parametrize("text, gp", ARRAY_VALUED)
def test_jacobian_is_stacked_without_item_assignment(text, gp, library):
    """The full Jacobian of an array-valued problem, built from columns
    (immutable JAX arrays, a lazy Dask graph), equals the NumPy target's."""
    to, back, native = backend(library, text)
    reference, portable = (matcalc.compile(text, target=t, jacobian=True)
                           for t in ("numpy", "array-api"))
    inputs = _inputs(text, gp)
    want = _as_dict(reference.jacobian(**inputs))
    if library == "dask":
        import dask
        with dask.config.set(scheduler=_no_compute):
            got = _as_dict(portable.jacobian(**converted(inputs, to)))
    else:
        got = _as_dict(portable.jacobian(**converted(inputs, to)))
    assert set(got) == set(want)
    for key, value in got.items():
        assert native(value), key
        np.testing.assert_allclose(back(value), want[key], rtol=RTOL, atol=RTOL, err_msg=key)


@pytest.mark.parametrize("text", ["A: N x N\nf = det(A)", "A: N x N\nf = logdet(A)",
                                  "A: N x N\nf = log(abs(det(A))) - logdet(A) + det(A) ** 2"])
def test_dask_det_and_logdet_of_any_matrix(text):
    """Dask has no det or slogdet: the helpers factorise A = P L U, so a
    matrix that is not spd (here unsymmetric, with a negative determinant)
    gets NumPy's value and gradient, lazily (Cholesky read one triangle
    of it: a wrong number, silently); and float32 stays float32 through
    the gradient's inverse (Dask's inv of float32 is float64)."""
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    a = np.random.default_rng(3).standard_normal((5, 5))
    a[[0, 1]] = a[[1, 0]] if np.linalg.det(a) > 0 else a[[0, 1]]
    assert np.linalg.det(a) < 0
    want, want_grads = matcalc.compile(text).value_and_grad(A=a)
    portable = matcalc.compile(text, target="array-api")
    for dtype, rtol in ((np.float64, RTOL), (np.float32, 1e-4)):
        with dask.config.set(scheduler=_no_compute):
            got, grads = portable.value_and_grad(A=da.from_array(a.astype(dtype), chunks=(5, 5)))
        assert got.dtype == dtype and grads["A"].dtype == dtype
        np.testing.assert_allclose(got.compute(scheduler="sync"), want, rtol=rtol)
        np.testing.assert_allclose(grads["A"].compute(scheduler="sync"), want_grads["A"],
                                   rtol=rtol, atol=rtol)


@pytest.mark.parametrize("library", ["strict", "torch", "jax", "dask"])
def test_slices_of_negative_step(library):
    """X[::-1] and X[:, ::-2] (and their adjoints) through `_index`, a flip
    of a slice of positive step: PyTorch's tensors take no negative step
    (`ValueError: step must be greater than zero` was what the module gave)."""
    text = "X: N x 6\nw: N\nf = sum(X[::-1] * X) + sum(X[:, ::-2] ** 2 * w[:, None]) + sum(X[1:, -1])\n"
    to, back, native = backend(library, text)
    source = matcalc.codegen(text, target="array-api")
    assert "_index(xp, X, (slice(None, None, -1),))" in source and "X[1:, -1, ...]" in source
    (reference, portable), extras = _modules(text)
    inputs = _example_inputs(text)
    want = _run(reference, inputs, None, {})
    got = _run(portable, converted(inputs, to), None, {})
    for key, value in got.items():
        assert native(value), key
        np.testing.assert_allclose(back(value), want[key], rtol=RTOL, err_msg=key)


@pytest.mark.parametrize("library", ["strict", "torch", "jax", "dask"])
@pytest.mark.parametrize("n, m", [(3, 5), (5, 3)])
def test_rectangular_eye(library, n, m):
    """eye(N, D) is `_eye_rect`, i = j cast: Dask's eye(3, 5) built a graph
    with a missing block and its eye(5, 3) was 5 × 5."""
    text = "X: N x D\nf = sum(eye(N, D) * X ** 2) + sum(eye(D, N) @ X)\n"
    to, back, native = backend(library, text)
    (reference, portable), _ = _modules(text)
    x = np.random.default_rng(0).standard_normal((n, m))
    want = _run(reference, {"X": x}, None, {})
    got = _run(portable, {"X": to(x)}, None, {})
    for key, value in got.items():
        assert native(value), key
        np.testing.assert_allclose(back(value), want[key], rtol=RTOL, err_msg=key)


def test_a_gradient_that_is_an_input_is_a_copy_on_tensors_that_require_grad():
    """dA = B is the caller's own array: `_copy`, a clone for a PyTorch
    tensor, so no warning (torch 2.13's `asarray(x, copy=True)` warns for a
    tensor that requires grad) and the autograd graph is kept; on NumPy it
    is still a new array."""
    torch = pytest.importorskip("torch")
    text = "A: N x N\nB: N x N\nf = sum(A * B) + sum(exp(A)[0, :])\n"
    module = matcalc.compile(text, target="array-api")
    assert "dB = _copy(xp, A)" in module.source
    A = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    B = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, grads = module.value_and_grad(A=A, B=B)
    assert grads["B"] is not A and grads["B"].grad_fn is not None
    torch.testing.assert_close(grads["B"], A)
    a = np.eye(3)
    _, grads = module.value_and_grad(A=a, B=a)
    assert grads["B"] is not a and not np.shares_memory(grads["B"], a)


NUMBER_FILLS = ["sum(Y * where(X > 0, 2, 1))", "sum(Y / where(X > 0, 2, 1))",
                "sum(Y * where(X > 0, 0.5, 1.5))", "sum(leaky_relu(X, negative_slope=0.2) * Y)",
                "sum(Y / (N - 1))", "sum(Y / (N - 1) ** 2)"]


@pytest.mark.parametrize("text", NUMBER_FILLS)
@pytest.mark.parametrize("target", ["numpy", "array-api"])
def test_arrays_made_from_numbers_have_the_inputs_floating_type(text, target):
    """where of two numbers was NumPy's integer (or float64) array, so dY was
    int64 and `dY *= 0.1` raised; a fill of 1 / (N - 1) was an array scalar,
    which the standard's `full` refuses (array-api-strict raised). float32
    inputs give float32 values and gradients, equal to the float64 ones."""
    problem = matcalc.problem(text, X="N x D", Y="N x D", wrt="Y")
    module = matcalc.compile(problem, target=target)
    xp = np if target == "numpy" else pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    want = matcalc.compile(problem).value_and_grad(X=X, Y=Y)[1]["Y"]
    for dtype in (xp.float32, xp.float64):
        value, grads = module.value_and_grad(X=xp.asarray(X, dtype=dtype), Y=xp.asarray(Y, dtype=dtype))
        assert value.dtype == dtype and grads["Y"].dtype == dtype
        np.testing.assert_allclose(np.asarray(grads["Y"]), want, rtol=1e-6)


def test_a_where_of_two_numbers_is_exact_on_each_side():
    """where(x > 0, 1e-20, 1) is 1e-20 where x > 0: computed as
    1 + (1e-20 - 1) * k it was 0 there (review of session 14)."""
    module = matcalc.compile(matcalc.problem("sum(where(x > 0, 1e-20 * x, x))", x="N"))
    grads = module.value_and_grad(x=np.array([1.0, -1.0, 2.0]))[1]
    assert grads["x"].tolist() == [1e-20, 1.0, 1e-20]
