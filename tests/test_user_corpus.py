"""The user corpus (`user_corpus.py`: problems as users type them, each
with its function written by hand in jax.numpy) against JAX's own
derivatives: value, gradients (against a random upstream gradient for an
array-valued function), Hessian-vector products, Hessians and Jacobians
in float64 (jax_enable_x64), for `--target numpy` and for `--target
array-api` on array-api-strict, NumPy, PyTorch CPU, JAX and Dask (nothing
computed before `.compute()`). Results are arrays of the inputs' library
and floating type; float32 inputs give float32 results close to the
float64 ones. Any warning is an error. The derivatives by a `symmetric`
or `spd` matrix S are JAX's of the function of (S + Sᵀ)/2: the gradient
(G + Gᵀ)/2 of JAX's G, the Hessian symmetric in each index pair.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import matcalc
from corpus_checks import backend, converted, covering, installed, kept
from user_corpus import CORPUS

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

from user_corpus import J  # noqa: E402  (after x64 is set)

BY_ID = {u.id: u for u in CORPUS}
RTOL = 1e-8       # float64: another algorithm's rounding only (inv against solve)
RTOL32 = 2e-3     # float32 inputs against the float64 reference
LIBRARIES = ("strict", "numpy", "torch", "jax", "dask")
PARSED = kept({u.id: matcalc.parse(u.text) for u in CORPUS}) if installed("array-api") else {}
# array-api-strict and NumPy run every problem; PyTorch, JAX, Dask and the
# float32 checks (the NumPy target; the array-API module on every library
# but JAX, whose float32 test_array_api.py checks) the problems covering the
# corpus's features.
COVERING = covering(PARSED, "array-api") if PARSED else []
ON_LIBRARIES = [pytest.param(lib, u.id, id=f"{lib}-{u.id}") for lib in LIBRARIES for u in CORPUS
                if lib in ("strict", "numpy") or u.id in COVERING]


def _symmetric(u) -> set:
    return {n for n, (_, dom) in u.declarations().items() if dom in ("symmetric", "spd")}


def reference(key: str) -> tuple:
    """(inputs, direction v, dout, {result name: JAX's value}) of a problem."""
    inputs, v, dout, _ = _prepared(key)
    wrt = BY_ID[key].wrt()
    v = v[wrt[0]] if v is not None and len(wrt) == 1 else v
    return inputs, v, dout, _references()[key]


@functools.lru_cache(maxsize=None)
def _prepared(key: str) -> tuple:
    """(inputs, v by name, dout, the reference's operands) of a problem."""
    u = BY_ID[key]
    inputs, wrt = u.draw(0), u.wrt()
    rng = np.random.default_rng(1)
    args = {n: jax.numpy.asarray(x) for n, x in inputs.items()}
    at = [args[n] for n in wrt]
    shape = jax.eval_shape(lambda *values: _bound(u, args, wrt, _symmetric(u), values), *at).shape
    dout = rng.standard_normal(shape) if shape else None
    v = {n: rng.standard_normal(np.shape(inputs[n])) for n in wrt} if u.hvp else None
    return inputs, v, dout, (args, at, dout, v)


@functools.lru_cache(maxsize=None)
def _references() -> dict:
    """JAX's derivatives of every problem's hand-written function, under one
    jax.jit of them all (one XLA compilation takes a third less time than
    one a problem)."""
    def everything(operands: dict) -> dict:
        return {key: _derivatives(BY_ID[key], BY_ID[key].wrt(), _symmetric(BY_ID[key]), *ops)
                for key, ops in operands.items()}
    got = _jit(everything)({key: _prepared(key)[3] for key in BY_ID})
    return {key: {k: np.asarray(x) for k, x in want.items()} for key, want in got.items()}


def _jit(f):
    """jax.jit, compiled quickly (every function here runs once)."""
    return jax.jit(f, compiler_options={"xla_backend_optimization_level": 0,
                                        "xla_llvm_disable_expensive_passes": True})


def _bound(u, args, wrt, sym, values):
    """The reference at the inputs, `values` for the variables of wrt; a
    symmetric one S read as (S + Sᵀ)/2, so JAX's derivatives are those by
    a symmetric matrix (the same at a symmetric S, its gradient (G + Gᵀ)/2)."""
    values = [(x + x.T) / 2 if n in sym else x for n, x in zip(wrt, values)]
    return u.ref(J, **{**args, **dict(zip(wrt, values))})


def _derivatives(u, wrt, sym, args, at, dout, v) -> dict:
    """Value, vjp(dout) (dout 1 for a scalar), HVP along v, Hessian and
    Jacobian by JAX, as the problem asks for them."""
    def f(*values):
        return _bound(u, args, wrt, sym, values)

    value, pullback = jax.vjp(f, *at)
    grads = pullback(jax.numpy.ones_like(value) if dout is None else dout)
    want = {"value": value, **{f"d{n}": g for n, g in zip(wrt, grads)}}
    if v is not None:
        gradient = jax.grad(f, argnums=tuple(range(len(wrt))))
        _, hv = jax.jvp(gradient, tuple(at), tuple(v[n] for n in wrt))
        want.update({f"Hv{n}": h for n, h in zip(wrt, hv)})
    if u.hessian:
        name = wrt[0] if u.hessian is True else u.hessian
        want[f"H{name}"] = jax.hessian(f, argnums=wrt.index(name))(*at)
    if u.jacobian:
        want["J"] = jax.jacobian(f)(*at)
    return want


@functools.lru_cache(maxsize=None)
def module(key: str, target: str):
    u = BY_ID[key]
    return matcalc.compile(u.text, target=target, **u.options())


def run(mod, u, inputs: dict, v, dout) -> dict:
    """Value, gradients (against dout), HVP, Hessian, Jacobian, by name;
    any warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grads = mod.value_and_grad(dout, **inputs)
        out = {"value": value, **{f"d{n}": g for n, g in grads.items()}}
        if u.hvp:
            hv = mod.hvp(v, **inputs)
            out.update({f"Hv{n}": h for n, h in (hv.items() if isinstance(hv, dict)
                                                 else [(u.wrt()[0], hv)])})
        if u.hessian:
            name = u.wrt()[0] if u.hessian is True else u.hessian
            out[f"H{name}"] = mod.hessian(**inputs)
        if u.jacobian:
            out["J"] = mod.jacobian(**inputs)
    return out


def compare(got: dict, want: dict, back, native, dtype, rtol):
    assert set(got) == set(want), (sorted(got), sorted(want))
    for key, value in got.items():
        assert native(value), f"{key}: {type(value).__name__}, not the inputs' library"
        value = back(value)
        assert value.dtype == dtype, (key, value.dtype)
        expected = want[key]
        assert value.shape == expected.shape, (key, value.shape, expected.shape)
        scale = max(1.0, float(np.max(np.abs(expected), initial=0)))
        np.testing.assert_allclose(value, expected, rtol=rtol, atol=rtol * scale, err_msg=key)


class _Computed(Exception):
    pass


def _no_compute(*args, **kwargs):
    raise _Computed("something was computed before .compute()")


def run_on(library: str, mod, u, inputs, v, dout) -> dict:
    """`run` on a library's arrays: on Dask under a scheduler that fails on
    any computation, on JAX under jax.jit (as a JAX user runs it)."""
    if library == "dask":
        import dask
        with dask.config.set(scheduler=_no_compute):
            return run(mod, u, inputs, v, dout)
    if library == "jax":
        return _jit(lambda inputs, v, dout: run(mod, u, inputs, v, dout))(inputs, v, dout)
    return run(mod, u, inputs, v, dout)


@pytest.mark.parametrize("key", list(BY_ID))
def test_numpy_target_matches_jax(key):
    """`--target numpy`: value and derivatives equal JAX's, in float64."""
    inputs, v, dout, want = reference(key)
    got = run(module(key, "numpy"), BY_ID[key], inputs, v, dout)
    compare(got, want, np.asarray, lambda y: isinstance(y, (np.ndarray, np.generic)),
            np.float64, RTOL)


@pytest.mark.parametrize("library, key", ON_LIBRARIES)
def test_array_api_module_matches_jax(library, key):
    """`--target array-api` on each library: JAX's numbers, as the
    library's float64 arrays (Dask: nothing computed before .compute())."""
    to, back, native = backend(library, BY_ID[key].text)
    inputs, v, dout, want = reference(key)
    args = (BY_ID[key], converted(inputs, to), converted(v, to), converted(dout, to))
    got = run_on(library, module(key, "array-api"), *args)
    compare(got, want, back, native, np.float64, RTOL)


FLOAT32 = [pytest.param(target, lib, key, id=f"{target}-{lib}-{key}") for key in COVERING
           for target, lib in (("numpy", "numpy"), *(("array-api", lib) for lib in LIBRARIES
                                                    if lib != "jax"))]


@pytest.mark.parametrize("target, library, key", FLOAT32)
def test_float32_stays_float32(target, library, key):
    """float32 inputs give float32 results within float32's precision."""
    to, back, native = backend(library, BY_ID[key].text)
    inputs, v, dout, want = reference(key)
    single = {n: to(x if x.dtype.kind == "i" else np.asarray(x, np.float32))
              for n, x in inputs.items()}
    v32 = converted(None if v is None else
                     np.asarray(v, np.float32) if isinstance(v, np.ndarray) else
                     {n: np.asarray(x, np.float32) for n, x in v.items()}, to)
    dout32 = None if dout is None else to(np.asarray(dout, np.float32))
    got = run_on(library, module(key, target), BY_ID[key], single, v32, dout32)
    compare(got, want, back, native, np.float32, RTOL32)
