"""The example problems in examples/: each passes the finite-difference check,
and the key ones print the textbook closed forms the seed documents derive.

Seeds are the documents in shared/seeds/ ("seed 000" .. "seed 004").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.checks.against import load_function

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PROBLEM_FILES = sorted(EXAMPLES.glob("*.mc"))
HANDWRITTEN = EXAMPLES / "seed004_handwritten.py"


def load(name: str):
    return matcalc.parse((EXAMPLES / name).read_text(encoding="utf-8"))


def lines(g) -> set[str]:
    return {line.strip() for line in str(g).splitlines()}


def run(module, **inputs):
    """value and {name: gradient} of a compiled problem (dout = 1)."""
    return module.value_and_grad(**inputs)


def central_differences(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    x = np.array(x, dtype=np.float64)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        out[i] = (up - down) / (2 * eps)
    return out


# --------------------------------------------------------------------------
# every example


def test_examples_exist():
    names = {p.name for p in PROBLEM_FILES}
    assert {"mlp.mc", "seed001_four_layer.mc", "affine.mc", "sigmoid_chain.mc",
            "least_squares.mc", "logistic.mc", "linalg.mc",
            "column_layout.mc"} <= names


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=lambda p: p.stem)
def test_example_has_header_comment(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("#"), f"{path.name} should start with a comment saying what it is"


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=lambda p: p.stem)
def test_example_passes_finite_difference_check(path):
    p = matcalc.parse(path.read_text(encoding="utf-8"))
    for seed in (0, 1):
        result = matcalc.check(p, seed=seed)
        assert result.ok, f"{path.name}, seed {seed}:\n{result}"
        assert set(result.errors) == set(p.wrt)


@pytest.mark.parametrize("path", PROBLEM_FILES, ids=lambda p: p.stem)
def test_example_compiles_and_names_inputs(path):
    p = matcalc.parse(path.read_text(encoding="utf-8"))
    module = matcalc.compile(p)
    assert tuple(module.WRT) == tuple(p.wrt)
    assert tuple(module.INPUTS) == tuple(p.variables)
    compile(module.source, f"<{path.name}>", "exec")  # the source is valid Python


# --------------------------------------------------------------------------
# seed 004: two-layer ReLU network (examples/mlp.mc)


def test_mlp_closed_form():
    g = matcalc.grad(load("mlp.mc"))
    text = lines(g)
    # t0 = relu(Z1) is the hidden activation, t1 = prediction - T the residual.
    assert "t0 = relu(Z1)" in text
    assert "t1 = t0 @ W2 + b2 - T" in text
    assert "δt1 = 2 / N * t1" in text
    assert "∂loss/∂W2 = t0.T @ δt1" in text            # dW = A.T @ dS
    assert "∂loss/∂b2 = sum(δt1, axis=0)" in text      # db = column sums of dS
    assert "δZ1 = (δt1 @ W2.T) * step(Z1)" in text   # dA = dS @ W.T, then ReLU'
    assert "∂loss/∂W1 = X.T @ δZ1" in text
    assert "∂loss/∂b1 = sum(δZ1, axis=0)" in text


SEED004 = """
# seed 004's network and loss exactly: loss = sum((y - pred)**2), no 1/N
X: N x D
y: N x O
W1: D x H
b1: H
W2: H x O
b2: O
h = X @ W1 + b1
h_relu = relu(h)
pred = h_relu @ W2 + b2
loss = sum((y - pred)**2)
wrt W1, b1, W2, b2
"""


def test_seed004_training_loop_bug():
    """Seed 004's loop writes dW2 = h_relu.T.dot(db2) and dh_relu =
    db2.dot(W2.T); both should use dpred.  matcalc's gradients match finite
    differences, the seed's do not (and the corrected lines match matcalc)."""
    p = matcalc.parse(SEED004)
    module = matcalc.compile(p)
    # h_relu.T.dot(db2) only runs at all when N == O, so take N = O.
    N, D, H, O = 4, 3, 5, 4
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((N, D)), rng.standard_normal((N, O))
    W1, b1 = rng.standard_normal((D, H)), rng.standard_normal(H)
    W2, b2 = rng.standard_normal((H, O)), rng.standard_normal(O)
    loss, grads = run(module, X=X, y=y, W1=W1, b1=b1, W2=W2, b2=b2)

    # The seed's loop, verbatim (examples/seed004_handwritten.py).
    pred = np.maximum(X.dot(W1) + b1, 0).dot(W2) + b2
    assert np.isclose(loss, np.sum(np.square(y - pred)))
    inputs = dict(X=X, y=y, W1=W1, b1=b1, W2=W2, b2=b2)
    seed = load_function(f"{HANDWRITTEN}:backward")(**inputs)
    dW1, db1, dW2, db2 = (seed[name] for name in ("W1", "b1", "W2", "b2"))

    # matcalc's dW2 is the true gradient ...
    def loss_of_W2(w):
        return module.forward(X, y, W1, b1, w, b2)[0]
    fd_W2 = central_differences(loss_of_W2, W2)
    assert np.allclose(grads["W2"], fd_W2, rtol=1e-6, atol=1e-6)
    result = matcalc.check(p, dims=dict(N=N, D=D, H=H, O=O),
                           inputs=dict(X=X, y=y, W1=W1, b1=b1, W2=W2, b2=b2))
    assert result.ok, str(result)

    # ... and the seed's is not: it is not even the shape of W2 ...
    assert dW2.shape == (H,) != W2.shape == grads["W2"].shape
    assert not np.allclose(np.broadcast_to(dW2[:, None], W2.shape), grads["W2"])
    # ... and its dh_relu makes dW1, db1 wrong too (db2 is right).
    assert dW1.shape == grads["W1"].shape
    assert not np.allclose(dW1, grads["W1"])
    assert not np.allclose(db1, grads["b1"])
    assert np.allclose(db2, grads["b2"])

    # With dpred in place of db2 the seed's lines give matcalc's gradients.
    fixed = load_function(f"{HANDWRITTEN}:backward_fixed")(**inputs)
    assert np.allclose(fixed["W2"], grads["W2"], rtol=1e-12)
    assert np.allclose(fixed["W1"], grads["W1"], rtol=1e-12)
    assert np.allclose(fixed["b1"], grads["b1"], rtol=1e-12)


# --------------------------------------------------------------------------
# seed 001: four-layer ReLU network


def test_seed001_closed_form():
    g = matcalc.grad(load("seed001_four_layer.mc"))
    text = lines(g)
    # Named intermediates survive, Y included; dY is the seed's DY over N*O.
    for k, prev in ((1, "X"), (2, "A1"), (3, "A2")):
        assert f"Z{k} = {prev} @ W{k} + B{k}" in text
        assert f"A{k} = relu(Z{k})" in text
    assert "Y = A3 @ W4 + B4" in text
    assert "t0 = Y - T" in text
    assert "δY = 2 / (N * O) * t0" in text      # mean over N*O entries
    assert "∂err/∂W4 = A3.T @ δY" in text
    assert "∂err/∂B4 = sum(δY, axis=0)" in text
    assert "δZ3 = (δY @ W4.T) * step(Z3)" in text   # the seed's DZ3, over N*O
    assert "δZ2 = (δZ3 @ W3.T) * step(Z2)" in text
    assert "δZ1 = (δZ2 @ W2.T) * step(Z1)" in text
    assert "∂err/∂W3 = A2.T @ δZ3" in text
    assert "∂err/∂W2 = A1.T @ δZ2" in text
    assert "∂err/∂W1 = X.T @ δZ1" in text
    assert "∂err/∂B1 = sum(δZ1, axis=0)" in text


def test_seed001_script_runs():
    proc = subprocess.run([sys.executable, str(EXAMPLES / "seed001_four_layer.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "err = 5.778522" in proc.stdout
    assert "matcalc agrees" in proc.stdout


def test_seed001_formulas_hold_for_a_batch():
    """The seed's DW4 = A3.T @ DY / len(X) and DB4 = DY.mean(axis=0) are the
    gradient of mean((Y - T)**2) for any batch size when T has one column."""
    module = matcalc.compile(load("seed001_four_layer.mc"))
    rng = np.random.default_rng(1)
    N, D, H = 7, 4, 6
    shapes = dict(X=(N, D), T=(N, 1), W1=(D, H), B1=(H,), W2=(H, H), B2=(H,),
                  W3=(H, H), B3=(H,), W4=(H, 1), B4=(1,))
    v = {k: rng.standard_normal(s) for k, s in shapes.items()}
    _, grads = run(module, **v)
    A3 = np.maximum(0, np.maximum(0, np.maximum(0, v["X"] @ v["W1"] + v["B1"])
                                  @ v["W2"] + v["B2"]) @ v["W3"] + v["B3"])
    DY = 2 * (A3 @ v["W4"] + v["B4"] - v["T"])
    assert np.allclose(grads["W4"], A3.T.dot(DY) / len(v["X"]), rtol=1e-12)
    assert np.allclose(grads["B4"], DY.mean(axis=0), rtol=1e-12)


# --------------------------------------------------------------------------
# seed 000: affine layer with a matrix output


def test_affine_closed_form():
    g = matcalc.grad(load("affine.mc"))
    text = lines(g)
    assert "∂L/∂X = δS @ W.T" in text
    assert "∂L/∂W = X.T @ δS" in text
    assert "∂L/∂b = sum(δS, axis=0)" in text


def test_affine_backward_given_dS():
    module = matcalc.compile(load("affine.mc"))
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    S, cache = module.forward(X, W, b)
    assert np.allclose(S, X @ W + b)
    dS = rng.standard_normal(S.shape)
    dX, dW, db = module.backward(cache, dS)
    assert np.allclose(dX, dS @ W.T)
    assert np.allclose(dW, X.T @ dS)
    assert np.allclose(db, dS.sum(axis=0))


# --------------------------------------------------------------------------
# seed 002: scalar sigmoid chain


def test_sigmoid_chain_closed_form():
    g = matcalc.grad(load("sigmoid_chain.mc"))
    text = lines(g)
    # sigmoid'(z) = a (1 - a); dC0/da3 = 2 (a3 - y)
    assert "t0 = a3 - y" in text
    assert "δz3 = 2 * t0 * a3 * (1 - a3)" in text
    assert "δz2 = δz3 * w3 * a2 * (1 - a2)" in text
    assert "δz1 = δz2 * w2 * a1 * (1 - a1)" in text
    assert "∂C0/∂w3 = δz3 * a2" in text
    assert "∂C0/∂b3 = δz3" in text
    assert "∂C0/∂w1 = δz1 * x" in text


def test_sigmoid_chain_matches_hand_chain_rule():
    module = matcalc.compile(load("sigmoid_chain.mc"))
    v = dict(x=0.7, y=1.0, w1=0.3, b1=-0.2, w2=-1.1, b2=0.4, w3=0.9, b3=0.1)
    C0, grads = run(module, **v)
    s = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    a0 = v["x"]
    a1 = s(v["w1"] * a0 + v["b1"])
    a2 = s(v["w2"] * a1 + v["b2"])
    a3 = s(v["w3"] * a2 + v["b3"])
    assert np.isclose(C0, (a3 - v["y"]) ** 2)
    # seed 002: dC0/dw(L) = a(L-1) sigma'(z(L)) 2 (a(L) - y), and so on down.
    dz3 = 2 * (a3 - v["y"]) * a3 * (1 - a3)
    dz2 = dz3 * v["w3"] * a2 * (1 - a2)
    dz1 = dz2 * v["w2"] * a1 * (1 - a1)
    expected = dict(w3=dz3 * a2, b3=dz3, w2=dz2 * a1, b2=dz2, w1=dz1 * a0, b1=dz1)
    for name, value in expected.items():
        assert np.isclose(grads[name], value, rtol=1e-12), name


# --------------------------------------------------------------------------
# least squares and logistic regression


def test_least_squares_closed_form_and_normal_equations():
    p = load("least_squares.mc")
    assert "∂f/∂x = 2 * (A.T @ t0)" in lines(matcalc.grad(p))
    module = matcalc.compile(p)
    rng = np.random.default_rng(2)
    A, b = rng.standard_normal((8, 3)), rng.standard_normal(8)
    x = rng.standard_normal(3)
    _, grads = run(module, A=A, x=x, b=b)
    assert np.allclose(grads["x"], 2 * A.T @ (A @ x - b))
    best = np.linalg.lstsq(A, b, rcond=None)[0]
    _, grads = run(module, A=A, x=best, b=b)
    assert np.allclose(grads["x"], 0, atol=1e-10)


def test_logistic_closed_form():
    p = load("logistic.mc")
    assert "∂f/∂w = -(X.T @ (sigmoid(t0) * y))" in lines(matcalc.grad(p))
    module = matcalc.compile(p)
    rng = np.random.default_rng(3)
    X, w = rng.standard_normal((9, 4)), rng.standard_normal(4)
    y = rng.choice([-1.0, 1.0], 9)
    f, grads = run(module, X=X, y=y, w=w)
    m = y * (X @ w)
    assert np.isclose(f, np.sum(np.log1p(np.exp(-m))))
    assert np.allclose(grads["w"], -X.T @ (y / (1 + np.exp(m))))


def test_logistic_log1p_and_log_forms_agree():
    rng = np.random.default_rng(5)
    X, w = rng.standard_normal((6, 3)), rng.standard_normal(3)
    y = rng.choice([-1.0, 1.0], 6)
    out = []
    for expr in ("sum(softplus(-y * (X @ w)))", "sum(log(1 + exp(-y * (X @ w))))",
                 "sum(log1p(exp(-y * (X @ w))))"):
        p = matcalc.problem(expr, X="N x D", y="N", w="D", wrt="w")
        assert matcalc.check(p).ok
        out.append(run(matcalc.compile(p), X=X, y=y, w=w)[1]["w"])
    assert np.allclose(out[0], out[1]) and np.allclose(out[0], out[2])


# --------------------------------------------------------------------------
# inv, logdet, trace, det


def test_linalg_matches_textbook_gradient():
    module = matcalc.compile(load("linalg.mc"))
    rng = np.random.default_rng(6)
    N, D = 10, 3
    X = rng.standard_normal((N, D))
    B = rng.standard_normal((D, D))
    S = B @ B.T + np.eye(D)
    lam, mu = 0.3, -0.2
    nll, grads = run(module, X=X, S=S, lam=lam, mu=mu)
    C = X.T @ X / N
    Si = np.linalg.inv(S)
    assert np.isclose(nll, N / 2 * np.linalg.slogdet(S)[1] + N / 2 * np.trace(Si @ C)
                      + lam * np.trace(S) + mu * np.linalg.det(S))
    expected = (N / 2 * Si - N / 2 * Si @ C @ Si + lam * np.eye(D)
                + mu * np.linalg.det(S) * Si)
    assert np.allclose(grads["S"], expected, rtol=1e-10)
    # The maximum-likelihood covariance (lam = mu = 0) is C: gradient zero there.
    _, grads = run(module, X=X, S=C, lam=0.0, mu=0.0)
    assert np.allclose(grads["S"], 0, atol=1e-10)


def test_linalg_closed_form_uses_inverse_transpose():
    text = str(matcalc.grad(load("linalg.mc")))
    assert "t0 = inv(S)" in text
    assert "t1 = mu * det(S)" in text
    # d logdet(S) = S^-T and d det(S) = det(S) S^-T, like terms in S^-T collected
    assert "t0.T * (N / 2 + t1)" in text


# --------------------------------------------------------------------------
# seed 003: column layout


def test_column_layout_closed_form():
    g = matcalc.grad(load("column_layout.mc"))
    text = lines(g)
    assert "Y = W @ X + b[:, None]" in text
    assert "∂L/∂W = Y @ X.T" in text    # dY @ X.T with dY = Y, not seed 003's dY.T @ X.T
    assert "∂L/∂X = W.T @ Y" in text
    assert "∂L/∂b = sum(Y, axis=1)" in text   # row sums: b is broadcast along columns
    assert not any("Y.T @ X.T" in line for line in text)


def test_column_layout_bias_gradient_is_row_sums():
    module = matcalc.compile(load("column_layout.mc"))
    rng = np.random.default_rng(7)
    W, X, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 6)), rng.standard_normal(3)
    L, grads = run(module, W=W, X=X, b=b)
    Y = W @ X + b[:, None]
    assert np.isclose(L, np.sum(Y ** 2) / 2)
    assert np.allclose(grads["W"], Y @ X.T)
    assert np.allclose(grads["X"], W.T @ Y)
    assert np.allclose(grads["b"], Y.sum(axis=1))


# --------------------------------------------------------------------------
# Regression tests for the issues found while writing the examples.


def test_linalg_closed_form_has_no_identity_matmul():
    text = str(matcalc.grad(load("linalg.mc")))
    assert "eye(D)) @" not in text


@pytest.mark.parametrize("expr", ["sum(sign(x) * x)", "sum(step(x) * x)"])
def test_sign_and_step_have_zero_derivative(expr):
    p = matcalc.problem(expr, x="N", wrt="x")
    module = matcalc.compile(p)
    x = np.array([-1.5, 0.5, 2.0, -0.25])
    _, grads = run(module, x=x)
    expected = np.sign(x) if "sign" in expr else (x > 0).astype(float)
    assert np.allclose(grads["x"], expected)


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_check_draws_spd_matrix_under_log_det():
    p = matcalc.problem("log(det(S))", S="D x D", wrt="S")
    assert matcalc.check(p).ok


def test_check_accepts_zero_gradient():
    # Each row of X / rowsum(X) sums to 1, so f = N and the gradient is 0;
    # matcalc's gradient is 0 to rounding, but check reports MISMATCH.
    p = matcalc.problem("sum(X / sum(X, axis=1)[:, None])", X="N x D", wrt="X")
    assert matcalc.check(p).ok
