"""`--target torch` and `--target jax`: every scalar example and a sample of
the identity table, run through PyTorch's `torch.autograd.Function` and
JAX's `jax.custom_vjp`, give the NumPy target's values and gradients (float64),
pass `torch.autograd.gradcheck` and `jax.test_util.check_grads` (finite
differences of the framework's own function against matcalc's backward),
run under `jax.jit` and `torch.compile`, and keep float32 float32.

Each test skips by name when its framework is not installed (the `backends`
extra installs both).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.checks.verify import draw, sizes
from matcalc.errors import MatcalcError
from test_identities import ROWS

from conftest import run_cli
from corpus_checks import covering, kept

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCALAR_EXAMPLES = [p for p in sorted(EXAMPLES.glob("*.mc"))
                   if not matcalc.parse(p.read_text("utf-8")).output.shape]

# A sample of the identity table covering every operator form the two
# targets spell their own way (eye, det, slogdet, inv, kron, diag, norms,
# maximum, relu's mask, sigmoid, softplus, logsumexp, transposed vectors).
IDENTITY_IDS = ["tr_X", "tr_AXinvB", "tr_kron", "sum_diag", "det_X", "logdet_X",
                "inv_aXb", "xtx", "norm", "fro_norm", "norm1", "sum_arcsin", "sum_tan",
                "sum_expm1", "tanh_Xw", "sigmoid_Xw", "relu_Xw", "maximum_0", "logistic",
                "logistic_softplus", "lse", "xent", "lse_rows", "x_diag_a_x"]
IDENTITIES = {r.id: f"{r.decls}\nf = {r.f}\nwrt {r.wrt}" for r in ROWS if r.id in IDENTITY_IDS}

PROBLEMS = [pytest.param(p.read_text("utf-8"), id=p.stem) for p in SCALAR_EXAMPLES] + [
    pytest.param(text, id=name) for name, text in IDENTITIES.items()]


# jax.test_util.check_grads (numerical differences through the custom_vjp,
# the slow part) on the problems covering the sample's features; every
# problem's value and gradients are compared with the NumPy target's.
_TEXTS = {p.id: p.values[0] for p in PROBLEMS}
NUMERICALLY_CHECKED = {_TEXTS[k] for k in covering(
    kept({k: matcalc.parse(text) for k, text in _TEXTS.items()}), "jax")}


def test_the_sample_is_complete():
    assert len(IDENTITIES) == len(IDENTITY_IDS) and len(SCALAR_EXAMPLES) >= 9


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def jax():
    """JAX in float64 for this module's tests (restored after)."""
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", before)


def reference(text: str, seed: int = 0):
    """(problem, inputs by name, value, gradients) from the NumPy target."""
    problem = matcalc.parse(text)
    inputs = draw(problem, sizes(problem), np.random.default_rng(seed))
    value, grads = matcalc.compile(problem).value_and_grad(**inputs)
    return problem, inputs, value, grads


def assert_close(got, want, rtol=1e-9):
    got = np.asarray(got)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.max(np.abs(want))))


def _tensor(torch, x, dtype, requires_grad):
    """An input as a tensor of `dtype` (an integer input, indices, as it is)."""
    if np.asarray(x).dtype.kind == "i":
        return torch.as_tensor(x)
    return torch.tensor(x, dtype=dtype, requires_grad=requires_grad)


@pytest.mark.parametrize("text", PROBLEMS)
def test_torch_function_matches_numpy_and_passes_gradcheck(torch, text):
    problem, inputs, value, grads = reference(text)
    module = matcalc.compile(problem, target="torch")
    args = [_tensor(torch, inputs[n], torch.float64, n in module.WRT) for n in module.INPUTS]
    loss = module.f(*args)
    loss.backward()
    assert_close(loss.detach(), value)
    for name, x in zip(module.INPUTS, args):
        if name in module.WRT:
            assert_close(x.grad, grads[name])
    structured = any(problem.variables[w].structure for w in module.WRT)
    if not structured:  # a symmetric variable's gradient is not the free one
        assert torch.autograd.gradcheck(module.f, args)


@pytest.mark.parametrize("text", PROBLEMS)
def test_torch_backward_scales_by_the_upstream_gradient(torch, text):
    """An upstream gradient of -1.5 gives -1.5 times the gradients, where
    dout multiplies the first adjoints (early_dout) and where it multiplies
    the gradients; with dout left out, backward gives the gradients."""
    problem, inputs, value, grads = reference(text)
    module = matcalc.compile(problem, target="torch")
    args = [_tensor(torch, inputs[n], torch.float64, n in module.WRT) for n in module.INPUTS]
    wrt = [x for name, x in zip(module.INPUTS, args) if name in module.WRT]
    got = torch.autograd.grad(module.f(*args), wrt, torch.tensor(-1.5, dtype=torch.float64))
    plain = module.backward(module.forward(*args)[1])
    for name, g, h in zip(module.WRT, got, plain):
        assert_close(g, -1.5 * grads[name])
        assert_close(h.detach(), grads[name])


def test_torch_backward_takes_dout_where_it_costs_least():
    """The MLP's dout goes on its first adjoint (N x O), not on the D x H
    gradient dW1; the factorisation's gradients are made from no adjoint,
    so they take it; the NumPy target scales its gradients."""
    mlp = (EXAMPLES / "mlp.mc").read_text("utf-8")
    torch_mlp = matcalc.codegen(mlp, target="torch")
    assert "dt1 = (2 / N * dout) * t1" in torch_mlp
    assert "dout * g for g in grads" not in torch_mlp and "> 0" not in torch_mlp
    assert "dout * g for g in grads" in matcalc.codegen(mlp)
    factorisation = ("X: m x n\nU: m x k\nV: n x k\nlam: scalar\n"
                     "f = sum((X - U @ V.T) ** 2) + lam * (sum(U ** 2) + sum(V ** 2))\nwrt U, V")
    assert "dout * g for g in grads" in matcalc.codegen(factorisation, target="torch")


def _jax_function(module, inputs, jnp):
    """(arguments, wrt positions, f of the wrt arguments alone)."""
    args = [jnp.asarray(inputs[n]) for n in module.INPUTS]
    wrt = [module.INPUTS.index(w) for w in module.WRT]

    def of_wrt(*free):
        return module.f(*[free[wrt.index(k)] if k in wrt else a for k, a in enumerate(args)])
    return args, wrt, of_wrt


@pytest.mark.parametrize("text", PROBLEMS)
def test_jax_custom_vjp_matches_numpy_under_jit_and_passes_check_grads(jax, text):
    """Under jax.jit, NumPy's value and gradients; check_grads on the
    problems of NUMERICALLY_CHECKED."""
    from jax.test_util import check_grads
    problem, inputs, value, grads = reference(text)
    module = matcalc.compile(problem, target="jax")
    args, wrt, of_wrt = _jax_function(module, inputs, jax.numpy)
    loss, got = jax.jit(jax.value_and_grad(module.f, argnums=wrt))(*args)
    assert_close(loss, value)
    for name, g in zip(module.WRT, got):
        assert_close(g, grads[name])
    structured = any(problem.variables[w].structure for w in module.WRT)
    if not structured and text in NUMERICALLY_CHECKED:
        check_grads(of_wrt, [args[k] for k in wrt], order=1, modes=["rev"])


@pytest.mark.parametrize("text", PROBLEMS)
def test_float32_stays_float32(torch, jax, text):
    problem, inputs, value, grads = reference(text)
    for target in ("torch", "jax"):
        module = matcalc.compile(problem, target=target)
        if target == "torch":
            args = [_tensor(torch, inputs[n], torch.float32, n in module.WRT)
                    for n in module.INPUTS]
            loss = module.f(*args)
            loss.backward()
            got = [x.grad for n, x in zip(module.INPUTS, args) if n in module.WRT]
            dtypes = {loss.dtype, *(g.dtype for g in got)}
            want = {torch.float32}
        else:
            args = [jax.numpy.asarray(inputs[n], dtype=None if np.asarray(inputs[n]).dtype.kind
                                      == "i" else "float32") for n in module.INPUTS]
            wrt = [module.INPUTS.index(w) for w in module.WRT]
            loss, got = jax.jit(jax.value_and_grad(module.f, argnums=wrt))(*args)
            dtypes = {loss.dtype, *(g.dtype for g in got)}
            want = {np.dtype("float32")}
        assert dtypes == want, target
        assert_close(np.asarray(loss.detach() if target == "torch" else loss), value, 1e-3)


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_generated_code_calls_no_numpy(target):
    """Only the framework's functions: no `np.`, no import of NumPy, no
    item assignment or out=."""
    for text in [p[0][0] for p in PROBLEMS]:
        source = matcalc.codegen(text, target=target, hvp=True)
        assert not re.search(r"\bnp\.|import numpy|\bout=|\]\s*=[^=]", source), source


@pytest.mark.parametrize("name", ["logistic.mc", "mlp.mc", "softmax_ce.mc"])
def test_hvp_matches_numpy(torch, jax, name):
    text = (EXAMPLES / name).read_text("utf-8")
    problem, inputs, _, _ = reference(text)
    rng = np.random.default_rng(1)
    wrt = problem.wrt
    v = {w: rng.standard_normal(np.shape(inputs[w])) for w in wrt}
    v = v[wrt[0]] if len(wrt) == 1 else v
    want = matcalc.compile(problem, hvp=True).hvp(v, **inputs)
    want = want if isinstance(want, dict) else {wrt[0]: want}
    tv = {k: torch.tensor(a) for k, a in v.items()} if isinstance(v, dict) else torch.tensor(v)
    got_torch = matcalc.compile(problem, target="torch", hvp=True).hvp(
        tv, **{n: torch.tensor(a) for n, a in inputs.items()})
    jv = {k: jax.numpy.asarray(a) for k, a in v.items()} if isinstance(v, dict) \
        else jax.numpy.asarray(v)
    got_jax = jax.jit(matcalc.compile(problem, target="jax", hvp=True).hvp)(
        jv, **{n: jax.numpy.asarray(a) for n, a in inputs.items()})
    for got in (got_torch, got_jax):
        got = got if isinstance(got, dict) else {wrt[0]: got}
        for w in wrt:
            assert_close(got[w], want[w])


def test_every_hessian_block_on_each_target_is_jaxs(torch, jax):
    """hessian=True by w, b and W, a Kronecker block among them: each
    target's nested blocks (the array-API module's on array-api-strict)
    equal jax.hessian's of the same function."""
    from test_second import BLOCKS
    problem = matcalc.parse(BLOCKS)
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    jnp = jax.numpy

    def f(w, b, W):
        X, y, c = inputs["X"], inputs["y"], inputs["c"]
        return (jnp.sum(jax.nn.softplus(-y * (X @ w + b))) + jnp.sum((X @ W) ** 2) * b
                + jnp.sum(W * W) + w @ W @ c)
    order = ("w", "b", "W")
    want = jax.hessian(f, argnums=(0, 1, 2))(*(jnp.asarray(inputs[n]) for n in order))
    strict = pytest.importorskip("array_api_strict")
    for target, to in (("numpy", np.asarray), ("torch", torch.asarray), ("jax", jnp.asarray),
                       ("array-api", strict.asarray)):
        got = matcalc.compile(problem, target=target, hessian=True).hessian(
            **{n: to(a) for n, a in inputs.items()})
        for i, x in enumerate(order):
            for j, y in enumerate(order):
                assert_close(got[x][y], np.asarray(want[i][j]))


def test_torch_kron_of_a_transposed_factor(torch):
    """torch.kron raises on a non-contiguous factor ("view size is not
    compatible"): the Kronecker Hessian of tr(Xᵀ A X), kron(I, A.T + A),
    and a kron of A.T are made of contiguous copies."""
    problem = matcalc.parse("X: N x K\nA: N x N\nf = trace(X.T @ A @ X) + sum(sin(kron(A.T, X)))")
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    want = matcalc.compile(problem, hessian="X").hessian(**inputs)
    got = matcalc.compile(problem, target="torch", hessian="X").hessian(
        **{n: torch.asarray(a) for n, a in inputs.items()})
    assert_close(got, want)


def test_full_hessian_and_jacobian_are_stacked_from_columns(torch, jax):
    """Neither framework writes into arrays: a full Hessian (the MLP's by W1,
    built by unit directions) and a Jacobian are stacked from their columns,
    equal to the NumPy target's filled ones, under jax.jit too."""
    text = (EXAMPLES / "mlp.mc").read_text("utf-8")
    problem, inputs, _, _ = reference(text)
    want = matcalc.compile(problem, hessian="W1").hessian(**inputs)
    got_torch = matcalc.compile(problem, target="torch", hessian="W1").hessian(
        **{n: torch.asarray(a) for n, a in inputs.items()})
    hessian = matcalc.compile(problem, target="jax", hessian="W1").hessian
    got_jax = jax.jit(hessian)(**{n: jax.numpy.asarray(a) for n, a in inputs.items()})
    for got in (got_torch, got_jax):
        assert_close(got, want)
    array = "X: N x D\nw: D\nf = sin(X @ w)\n"
    problem = matcalc.parse(array)
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    want = matcalc.compile(problem, jacobian=True).jacobian(**inputs)
    for framework, target in ((torch, "torch"), (jax.numpy, "jax")):
        got = matcalc.compile(problem, target=target, jacobian=True).jacobian(
            **{n: framework.asarray(a) for n, a in inputs.items()})
        for name in want:
            assert_close(got[name], want[name])


def test_unknown_target_is_named():
    with pytest.raises(MatcalcError,
                       match="unknown code target 'cupy'.*numpy, array-api, torch, jax"):
        matcalc.codegen("x: N\nf = sum(x)", target="cupy")


def test_torch_compile_runs_the_closed_form_backward(torch):
    problem, inputs, value, grads = reference((EXAMPLES / "seed004.mc").read_text("utf-8"))
    module = matcalc.compile(problem, target="torch")
    args = [torch.tensor(inputs[n], requires_grad=n in module.WRT) for n in module.INPUTS]
    loss = torch.compile(module.f)(*args)
    loss.backward()
    assert_close(loss.detach(), value)
    for name, x in zip(module.INPUTS, args):
        if name in module.WRT:
            assert_close(x.grad, grads[name])


def test_inputs_are_checked(torch, jax):
    text = (EXAMPLES / "logistic.mc").read_text("utf-8")
    for target, make in (("torch", torch.ones), ("jax", jax.numpy.ones)):
        module = matcalc.compile(text, target=target)
        with pytest.raises(ValueError, match=r"y: expected shape \(N,\)"):
            module.f(make((4, 3)), make((5,)), make((3,)))


def test_cli_writes_each_target(tmp_path):
    for target in ("torch", "jax"):
        out = tmp_path / f"{target}.py"
        result = run_cli("codegen", EXAMPLES / "logistic.mc", "--target", target, "-o", out)
        assert result.returncode == 0, result.stderr
        source = out.read_text("utf-8")
        assert f"import {target}" in source and "def f(*inputs):" in source
    assert run_cli("codegen", EXAMPLES / "logistic.mc").stdout.decode() \
        == matcalc.codegen((EXAMPLES / "logistic.mc").read_text("utf-8"))


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_seed004_training_example_decreases_the_loss(framework):
    pytest.importorskip(framework)
    script = EXAMPLES / f"seed004_train_{framework}.py"
    result = subprocess.run([sys.executable, str(script), "--steps", "200"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    first, last = map(float, re.search(r"loss (\S+) -> (\S+)", result.stdout).groups())
    assert last < 1e-3 * first, result.stdout


def test_python_numbers_take_the_arrays_type(torch, jax):
    """A scalar input given as a Python float takes the arrays' floating
    type, as in the NumPy target: float32 arrays give a float32 loss."""
    problem, inputs, value, grads = reference((EXAMPLES / "linalg.mc").read_text("utf-8"))
    for target, make, want in (("torch", lambda a: torch.tensor(a, dtype=torch.float32),
                                torch.float32),
                               ("jax", lambda a: jax.numpy.asarray(a, dtype="float32"),
                                np.dtype("float32"))):
        module = matcalc.compile(problem, target=target)
        args = [inputs[n] if np.ndim(inputs[n]) == 0 else make(inputs[n])
                for n in module.INPUTS]
        assert all(type(inputs[n]) is float for n in ("lam", "mu"))
        loss, (dS,) = module.forward(*args)[0], module.backward(module.forward(*args)[1])
        assert loss.dtype == want and dS.dtype == want, target
        assert_close(np.asarray(loss), value, 1e-3)
        assert_close(np.asarray(dS), grads["S"], 1e-3)


@pytest.mark.parametrize("axis", [1, -1, (0, 2), None])
def test_torch_softmax_helper_along_one_axis_or_several(torch, axis):
    """torch.softmax where the axis is one; the shifted exp over several."""
    from matcalc.targets.torch import HELPERS
    namespace = {"torch": torch}
    exec(HELPERS["softmax"], namespace)
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) * 30
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    want = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(namespace["_softmax"](torch.asarray(x), axis).numpy(), want,
                               rtol=1e-12, atol=1e-15)


# ------------------------------------------------- inputs outside wrt ---

def _logistic_values():
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 3)), np.sign(rng.standard_normal(5)), rng.standard_normal(3)


NOT_IN_WRT = r"^X: matcalc derived the gradients by w only; generate the module with X in wrt"


def test_torch_f_warns_of_an_input_not_in_wrt_that_requires_grad():
    """An upstream X that requires grad gets no gradient from matcalc's
    backward: a warning names it (a silent None left the encoder computing X
    untrained), and torch.autograd.grad by w alone still gives w's."""
    torch = pytest.importorskip("torch")
    module = matcalc.compile(matcalc.parse((EXAMPLES / "logistic.mc").read_text()), target="torch")
    X, y, w = (torch.tensor(a) for a in _logistic_values())
    encoded = (2 * X).requires_grad_()
    with pytest.warns(UserWarning, match=r"^X requires grad, but matcalc derived the "
                                         r"gradients by w only"):
        (grad,) = torch.autograd.grad(module.f(encoded, y, w.requires_grad_()), [w])
    expected = module.value_and_grad(X=2 * X, y=y, w=w.detach())[1]["w"]
    torch.testing.assert_close(grad, expected)


def test_jax_f_refuses_a_gradient_by_an_input_not_in_wrt():
    """jax.grad by X (argnums=0) was zeros: now a TypeError, jax.jit of the
    gradient too; by w it is the gradient, also of jax.jit(f) and of
    jax.checkpoint(f), and jax.hessian of it runs."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    module = matcalc.compile(matcalc.parse((EXAMPLES / "logistic.mc").read_text()), target="jax")
    X, y, w = _logistic_values()
    for transform in (lambda: jax.grad(module.f, argnums=0)(X, y, w),
                      lambda: jax.jit(jax.grad(module.f, argnums=(0, 2)))(X, y, w),
                      lambda: jax.vjp(module.f, X, y, w)):
        with pytest.raises(TypeError, match=NOT_IN_WRT):
            transform()
    want = module.value_and_grad(X=X, y=y, w=w)[1]["w"]
    for f in (module.f, jax.jit(module.f), jax.checkpoint(module.f)):
        np.testing.assert_allclose(jax.grad(f, argnums=2)(X, y, w), want, rtol=1e-12)
    assert jax.hessian(module.f, argnums=2)(X, y, w).shape == (3, 3)
