"""Checks shared by the corpus tests (`test_einsum.py`, `test_functions.py`,
`test_indexing.py`, `test_tensor_reductions.py`).

Every problem of a corpus is checked against finite differences and JAX
through the NumPy target in its own test file. The per-target checks here
(float32 on the NumPy and array-API targets, array-api-strict, `--target
torch`, `--target jax` under jit) run on `covering(...)`: a subset of the
corpus, chosen by greedy set cover, in which every feature (`features`) a
target prints for the corpus occurs at least once. A bad input is refused
by `assert_refused`: one line at its place, the source line and a caret.
"""

from __future__ import annotations

import atexit
import functools
import gc
import importlib.util

import numpy as np
import pytest

import matcalc
from matcalc.checks.verify import draw, sizes
from matcalc.errors import MatcalcError
from matcalc.ir.expr import Apply, Var, postorder
from matcalc.passes.lowering import lower
from matcalc.targets import code_target

FLOAT32_TARGETS = ("numpy", "array-api")
_KEPT: list[dict] = []


def kept(problems: dict) -> dict:
    """`problems` (key -> problem), a corpus parsed once, dropped at exit
    while imports still work: a node freed as the interpreter shuts down
    cannot hash its SymPy float to leave the intern table."""
    _KEPT.append(problems)
    return problems


@atexit.register
def _drop():
    for problems in _KEPT:
        problems.clear()
    _reference.cache_clear()
    gc.collect()


def _kind(value) -> str:
    """A parameter value as a feature: its type, and a bool or sign as such."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return "negative int" if value < 0 else "int"
    if isinstance(value, tuple):
        return f"tuple of {len(value)}" if len(value) < 2 else "tuple"
    return type(value).__name__


def _spec_kinds(spec: str) -> set:
    """An einsum's kinds: operand count, a repeated index in one operand (a
    diagonal or trace), an index summed in one operand alone, an ellipsis,
    a scalar operand, an implicit output."""
    terms, _, out = spec.partition("->")
    terms = terms.split(",")
    joined = "".join(terms)
    kinds = {f"{len(terms)} operands"}
    kinds |= {"repeated index"} if any(len(set(t)) < len(t.replace(".", "")) for t in terms) else set()
    kinds |= {"summed in one operand"} if any(
        joined.count(c) == 1 and c not in out for c in joined if c.isalpha()) else set()
    kinds |= {"ellipsis"} if "..." in spec else set()
    kinds |= {"scalar operand"} if "" in terms else set()
    kinds |= {"implicit output"} if "->" not in spec else set()
    return kinds


def _key_kinds(key: tuple) -> set:
    """An index key's entries by kind: int (negative), slice by the sign and
    size of its step, None, Ellipsis."""
    kinds = set()
    for entry in key:
        if isinstance(entry, slice):
            step = entry.step or 1
            kinds.add("slice step -" if step < 0 else "slice step >1" if step > 1 else "slice")
        else:
            kinds.add("Ellipsis" if entry is Ellipsis else _kind(entry))
    return kinds


def _param_features(op: str, key: str, value) -> set:
    if key == "spec" and isinstance(value, str):
        return {f"{op} {kind}" for kind in _spec_kinds(value)}
    if key == "key" and isinstance(value, tuple):
        return {f"{op} key {kind}" for kind in _key_kinds(value)}
    return {f"{op} {key}={_kind(value)}"}


def features(problem, target: str) -> frozenset[str]:
    """What the `target` module of `problem` computes with: each operator of
    the lowered program (value and gradients), with the rank of its result
    and the kinds of its parameters (an einsum's spec, an index's key, by
    kind), and each input's domain and rank."""
    g = matcalc.grad(problem)
    program = lower(g.code or g.program, code_target(target).TARGET.capabilities)
    found = {f"input {v.domain}" for v in problem.variables.values() if v.domain}
    for node in postorder([b.expr for b in program.bindings]):
        if isinstance(node, Apply):
            found.add(f"{node.op} of rank {min(node.ndim, 3)}")
            for key, value in node.params:
                found |= _param_features(node.op, key, value)
        elif isinstance(node, Var):
            found.add(f"input of rank {node.ndim}")
    return frozenset(found)


def covering(problems: dict, target: str) -> list:
    """The keys of a subset of `problems` (key -> problem) whose features on
    `target` are all the corpus's: greedy set cover, ties to the first key."""
    left = {key: features(p, target) for key, p in problems.items()}
    wanted = frozenset().union(*left.values())
    chosen = []
    while wanted:
        key = max(left, key=lambda k: len(left[k] & wanted))
        chosen.append(key)
        wanted -= left.pop(key)
    return [key for key in problems if key in chosen]


def check_differences(problem):
    """Every gradient matches central differences at the inputs of seeds 0
    and 1, and the value matches the text read by plain NumPy."""
    for seed in (0, 1):
        result = matcalc.check(problem, seed=seed)
        assert result.ok, str(result)
        assert result.value_error is not None and result.value_error < 1e-12


def close(got, want, rtol=1e-10):
    """`got` has `want`'s entries within rtol (relative to max(1, |want|))."""
    want = np.asarray(want, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=rtol,
                               atol=rtol * max(1.0, float(np.max(np.abs(want)))))


@functools.lru_cache(maxsize=None)
def _reference(problem):
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    value, grads = matcalc.compile(problem).value_and_grad(**inputs)
    return inputs, value, grads


def reference(problem):
    """(inputs, value, gradients): the NumPy module at inputs of seed 0,
    computed once per problem."""
    return _reference(problem)


# The library each target's module imports: a test of the target skips
# without it (the plain `.[test]` install has none of them).
TARGET_LIBRARIES = {"array-api": "array_api_compat", "torch": "torch", "jax": "jax"}


def compile_for(problem, target: str, **options):
    """`matcalc.compile(problem, target=target)`, the test skipped where the
    library the module imports is not installed."""
    if target in TARGET_LIBRARIES:
        pytest.importorskip(TARGET_LIBRARIES[target])
    return matcalc.compile(problem, target=target, **options)


def installed(target: str) -> bool:
    """Whether the library `target`'s module imports is installed."""
    return target not in TARGET_LIBRARIES or \
        importlib.util.find_spec(TARGET_LIBRARIES[target]) is not None


def check_float32(problem, rtol=1e-4, grad_rtol=1e-3):
    """The NumPy and array-API modules keep float32 (integer inputs stay
    integers) and give the float64 value within rtol, the gradients within
    grad_rtol."""
    inputs, value, grads = reference(problem)
    single = {n: x if problem.variables[n].domain == "int" else np.asarray(x, np.float32)
              for n, x in inputs.items()}
    for target in filter(installed, FLOAT32_TARGETS):
        got, got_grads = matcalc.compile(problem, target=target).value_and_grad(**single)
        assert {np.asarray(got).dtype, *(np.asarray(g).dtype for g in got_grads.values())} \
            == {np.dtype(np.float32)}, target
        close(got, value, rtol)
        for name in grads:
            close(got_grads[name], grads[name], grad_rtol)


def check_array_api_strict(problem):
    """The array-API module on array-api-strict gives NumPy's numbers."""
    xp = pytest.importorskip("array_api_strict")
    inputs, value, grads = reference(problem)
    module = compile_for(problem, "array-api")
    got, got_grads = module.value_and_grad(**{n: xp.asarray(x) for n, x in inputs.items()})
    close(np.asarray(got._array), value)
    assert set(got_grads) == set(grads)
    for name in grads:
        close(np.asarray(got_grads[name]._array), grads[name])


def check_torch_target(problem):
    """`--target torch`'s f, differentiated by torch.autograd, gives
    NumPy's value and gradients (integer inputs as integer tensors)."""
    torch = pytest.importorskip("torch")
    inputs, value, grads = reference(problem)
    module = matcalc.compile(problem, target="torch")
    args = [torch.as_tensor(inputs[n]) if problem.variables[n].domain == "int" else
            torch.tensor(np.asarray(inputs[n]), dtype=torch.float64,
                         requires_grad=n in problem.wrt)
            for n in module.INPUTS]
    loss = module.f(*args)
    loss.backward()
    close(loss.detach(), value)
    got = {n: x.grad for n, x in zip(module.INPUTS, args) if n in problem.wrt}
    assert set(got) == set(grads)
    for name, g in got.items():
        close(g, grads[name])


def check_jax_target(problem):
    """`--target jax` under jax.jit(jax.value_and_grad) gives NumPy's value
    and gradients."""
    from conftest import jax_value_and_grad
    inputs, value, grads = reference(problem)
    loss, got = jax_value_and_grad(problem, inputs)
    close(loss, value)
    assert set(got) == set(grads)
    for name, g in got.items():
        close(g, grads[name])


TARGET_CHECKS = {"numpy": check_float32, "array-api": check_array_api_strict,
                 "torch": check_torch_target, "jax": check_jax_target}


def assert_refused(source: str, line: int, column: int, words, filename="t.mc"):
    """Parsing `source` raises a MatcalcError whose message has each of
    `words`, written as `file:line:col: message`, the line and a caret."""
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(source, filename)
    err = info.value
    for word in words:
        assert word in err.message, err.message
    head, code, caret = str(err).splitlines()
    assert head == f"{filename}:{line}:{column}: {err.message}", head
    assert code == "    " + source.splitlines()[line - 1].expandtabs(1)
    assert caret == " " * (3 + column) + "^", str(err)


def per_target(problems: dict) -> list:
    """The pytest parameters (target, key): for each target of
    TARGET_CHECKS, the keys of its covering subset of `problems`."""
    return [pytest.param(target, key, id=f"{target}-{key}")
            for target in TARGET_CHECKS for key in covering(problems, target)]


def backend(name: str, text: str = ""):
    """(to the library `name`, back to NumPy, the library's array type
    check) for the arrays of the problem `text` (Dask's chunks follow it)."""
    if name == "numpy":
        return (lambda x: x), np.asarray, lambda y: isinstance(y, (np.ndarray, np.generic))
    if name == "strict":
        xp = pytest.importorskip("array_api_strict")
        return xp.asarray, lambda y: np.asarray(y._array), lambda y: isinstance(y, type(xp.asarray(0.0)))
    if name == "torch":
        torch = pytest.importorskip("torch")
        return torch.asarray, lambda y: y.numpy(), lambda y: isinstance(y, torch.Tensor)
    if name == "jax":
        jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)
        return jax.numpy.asarray, np.asarray, lambda y: isinstance(y, jax.Array)
    da = pytest.importorskip("dask.array")
    return (lambda x: da.from_array(x, chunks=_chunks(x.shape, text))), (lambda y: np.asarray(y.compute(
        scheduler="sync"))), lambda y: isinstance(y, da.Array)


FACTORISED = ("inv(", "solve(", "det(", "logdet(")


def _chunks(shape: tuple, text: str) -> tuple:
    """Dask chunks: rows two at a time; each array whole where the problem
    factorises a matrix (Dask's LU and Cholesky take square chunks only)."""
    whole = any(f in text for f in FACTORISED) or len(shape) == 2 and shape[0] == shape[1]
    return shape if whole else (2,) * bool(shape) + shape[1:]


def converted(values, to):
    """An array, or a dict of arrays by name, (or None) in another library by `to`."""
    if values is None or isinstance(values, np.ndarray):
        return None if values is None else to(values)
    return {n: to(x) for n, x in values.items()}
