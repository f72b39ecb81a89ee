"""The reference table of `test_textbook.py`: problems and their gradients
as a textbook prints them, a small program of assignments each.

A row's textbook program defines `d<variable>` for every variable of `wrt`
(and may name intermediates first); an array-valued function's upstream
gradient is `d<function>` (dS for S = X @ W + b). Equation numbers of the
Matrix Cookbook are those of the 15 November 2012 edition (Petersen &
Pedersen). Gradients by a symmetric matrix are matcalc's convention, the
symmetric G with dL = tr(G dS) (see `test_identities.py`).

`xfail` lists ((check, what differs), ...) for a check matcalc does not yet
pass on the row: "form", "operations" or "clean" (strict xfails).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import matcalc

COOKBOOK, SEED, ML = "cookbook", "seed", "ml"


@dataclass(frozen=True)
class Row:
    id: str
    kind: str              # cookbook, seed or ml
    decls: str             # declarations, `;`-separated
    f: str                 # the function (named intermediates first, `;`-separated)
    wrt: str
    textbook: str          # the textbook's program, `;`-separated assignments
    source: str = ""
    xfail: tuple = ()      # ((check, reason), ...)
    dims: tuple = ()       # sizes the mathematics needs, ((name, size), ...)

    def problem(self):
        named = re.match(r"\s*[A-Za-z_]\w*\s*=(?!=)", self.f.split(";")[-1])
        f = self.f if named else f"f = {self.f}"
        return matcalc.parse(f"{self.decls}\n{f}\nwrt {self.wrt}")

    @property
    def failing(self) -> dict:
        return dict(self.xfail)


MLP = "X: N x D; T: N x O; W1: D x H; b1: H; W2: H x O; b2: O"


def mlp(act: str, derivative: str, source: str, xfail=()) -> Row:
    """A one-hidden-layer regression network with activation `act`; the
    textbook's dZ1 = (dY W2ᵀ) ⊙ act'(Z1), `derivative` written over Z1, A1."""
    return Row(
        f"mlp_{act}", ML, MLP,
        f"Z1 = X @ W1 + b1; A1 = {act}(Z1); loss = sum((A1 @ W2 + b2 - T) ** 2) / N",
        "W1, b1, W2, b2",
        f"Z1 = X @ W1 + b1; A1 = {act}(Z1); dY = 2 / N * (A1 @ W2 + b2 - T); "
        f"dZ1 = (dY @ W2.T) * {derivative}; dW1 = X.T @ dZ1; db1 = sum(dZ1, axis=0); "
        "dW2 = A1.T @ dY; db2 = sum(dY, axis=0)", source, xfail)


ROWS = [
    # ---------------------------------------------------- Matrix Cookbook ---
    Row("tr_AXB", COOKBOOK, "A: K x N; X: N x M; B: M x K", "trace(A @ X @ B)", "X",
        "dX = A.T @ B.T", "Cookbook eq. 102"),
    Row("tr_XtBX", COOKBOOK, "X: N x M; B: N x N", "trace(X.T @ B @ X)", "X",
        "dX = B @ X + B.T @ X", "Cookbook eq. 109"),
    Row("tr_XBXt", COOKBOOK, "X: N x M; B: M x M", "trace(X @ B @ X.T)", "X",
        "dX = X @ B.T + X @ B", "Cookbook eq. 112"),
    Row("tr_AXBXtC", COOKBOOK, "A: K x N; X: N x M; B: M x M; C: N x K",
        "trace(A @ X @ B @ X.T @ C)", "X", "dX = A.T @ C.T @ X @ B.T + C @ A @ X @ B",
        "Cookbook eq. 119"),
    Row("tr_AXinvB", COOKBOOK, "A: K x N; X: N x N; B: N x K", "trace(A @ inv(X) @ B)", "X",
        "Xi = inv(X); dX = -Xi.T @ A.T @ B.T @ Xi.T", "Cookbook eq. 124"),
    Row("det", COOKBOOK, "X: N x N", "det(X)", "X", "f = det(X); dX = f * inv(X).T",
        "Cookbook eq. 49"),
    Row("logdet", COOKBOOK, "X: N x N", "logdet(X)", "X", "dX = inv(X).T", "Cookbook eq. 57"),
    Row("log_abs_det", COOKBOOK, "X: N x N", "log(abs(det(X)))", "X", "dX = inv(X).T",
        "Cookbook eq. 57, as users write it"),
    Row("logdet_spd", COOKBOOK, "S: N x N spd", "logdet(S)", "S", "dS = inv(S)",
        "Cookbook eq. 57, S = Sᵀ"),
    Row("logdet_XtX", COOKBOOK, "X: N x M", "logdet(X.T @ X)", "X",
        "dX = 2 * X @ inv(X.T @ X)", "Cookbook eq. 55", dims=(("N", 6), ("M", 3))),
    Row("inv_aXb", COOKBOOK, "a: N; X: N x N; b: N", "a @ inv(X) @ b", "X",
        "Xi = inv(X); dX = -Xi.T @ outer(a, b) @ Xi.T", "Cookbook eq. 61"),
    Row("aXb", COOKBOOK, "a: N; X: N x M; b: M", "a @ X @ b", "X", "dX = outer(a, b)",
        "Cookbook eq. 70"),
    Row("aXtb", COOKBOOK, "a: M; X: N x M; b: N", "a @ X.T @ b", "X", "dX = outer(b, a)",
        "Cookbook eq. 71"),
    Row("xAx", COOKBOOK, "x: N; A: N x N", "x @ A @ x", "x", "dx = A @ x + A.T @ x",
        "Cookbook eq. 81"),
    Row("xSx", COOKBOOK, "x: N; S: N x N symmetric", "x @ S @ x", "x", "dx = 2 * S @ x",
        "Cookbook eq. 81, S = Sᵀ"),
    Row("xSx_S", COOKBOOK, "x: N; S: N x N symmetric", "x @ S @ x", "S", "dS = outer(x, x)",
        "Cookbook eq. 72, S = Sᵀ"),
    Row("bXtXc", COOKBOOK, "b: M; X: N x M; c: M", "b @ X.T @ X @ c", "X",
        "dX = outer(X @ b, c) + outer(X @ c, b)",
        "Cookbook eq. 82, X(bcᵀ + cbᵀ) = Xbcᵀ + Xcbᵀ (two matrix-vector products)"),
    Row("wls", COOKBOOK, "x: N; A: N x M; s: M; W: N x N symmetric",
        "(x - A @ s) @ W @ (x - A @ s)", "s", "r = x - A @ s; ds = -2 * A.T @ W @ r",
        "Cookbook eq. 87, W = Wᵀ"),
    Row("norm2", COOKBOOK, "x, a: N", "norm(x - a)", "x", "r = x - a; dx = r / norm(r)",
        "Cookbook eq. 129"),
    Row("fro_sq", COOKBOOK, "X: N x M", "sum(X ** 2)", "X", "dX = 2 * X", "Cookbook eq. 132"),
    Row("fro_norm_sq", COOKBOOK, "X: N x M", "norm(X) ** 2", "X", "dX = 2 * X",
        "Cookbook eq. 132"),
    Row("tr_XtX", COOKBOOK, "X: N x M", "trace(X.T @ X)", "X", "dX = 2 * X",
        "Cookbook eq. 116"),
    Row("mahalanobis_m", COOKBOOK, "x, m: N; S: N x N spd", "(x - m) @ inv(S) @ (x - m)", "m",
        "dm = -2 * inv(S) @ (x - m)", "Cookbook eq. 86 with S = Sᵀ"),
    Row("quad_inv_R", COOKBOOK, "R: N x D; S: D x D spd", "sum((R @ inv(S)) * R) / 2", "R, S",
        "t = R @ inv(S); dR = t; dS = -(t.T @ t) / 2",
        "Cookbook eq. 61 row by row, S = Sᵀ (the issue's like-terms case)"),
    Row("quad_inv_R_general", COOKBOOK, "R: N x D; S: D x D", "sum((R @ inv(S)) * R) / 2",
        "R, S", "Si = inv(S); t = R @ Si; dR = (t + R @ Si.T) / 2; dS = -(t.T @ R @ Si.T) / 2",
        "Cookbook eq. 61 row by row"),
    Row("a_exp_Xw", COOKBOOK, "X: N x D; w: D", "sum(exp(X @ w))", "X, w",
        "e = exp(X @ w); dX = outer(e, w); dw = X.T @ e",
        "chain rule; the issue's alias line g0 = t0"),
    Row("tr_kron", COOKBOOK, "A: M x M; X: N x N", "trace(kron(A, X))", "X",
        "dX = trace(A) * eye(N)", "Cookbook eq. 106"),
    Row("tr_invS_A", COOKBOOK, "A: N x N; S: N x N spd", "trace(inv(S) @ A)", "S",
        "Si = inv(S); dS = -Si @ (A + A.T) @ Si / 2", "Cookbook eq. 124, S = Sᵀ"),
    Row("tr_X2B", COOKBOOK, "X: N x N; B: N x N", "trace(X @ X @ B)", "X",
        "dX = X.T @ B.T + B.T @ X.T", "Cookbook eq. 108"),
    Row("tr_XtBXC", COOKBOOK, "X: N x M; B: N x N; C: M x M", "trace(X.T @ B @ X @ C)", "X",
        "dX = B @ X @ C + B.T @ X @ C.T", "Cookbook eq. 118"),
    Row("det_inv", COOKBOOK, "X: N x N", "det(inv(X))", "X",
        "Xi = inv(X); dX = -det(Xi) * Xi.T", "Cookbook eq. 56"),
    Row("gauss_S_full", COOKBOOK, "S: N x N spd; C: N x N symmetric",
        "logdet(S) + trace(inv(S) @ C)", "S", "Si = inv(S); dS = Si - Si @ C @ Si",
        "Cookbook eqs. 57 and 124, S and C symmetric (the Gaussian likelihood)"),
    Row("tr_AtB_scaled", COOKBOOK, "A: N x K; B: N x K; c: scalar positive", "trace(A.T @ B) / c",
        "A", "dA = B / c", "∂ tr(AᵀB)/∂A = B (the Cookbook's trace derivatives), over a scalar"),
    Row("tr_inv_XtX", COOKBOOK, "X: N x M", "trace(inv(X.T @ X))", "X",
        "Q = inv(X.T @ X); dX = -2 * X @ Q @ Q", "Cookbook eq. 124 and the chain rule",
        dims=(("N", 6), ("M", 3))),
    Row("gauss_nll_S", COOKBOOK, "X: N x D; m: D; S: D x D spd",
        "R = X - m; nll = sum(R.T * solve(S, R.T)) / 2 + N / 2 * logdet(S)", "S",
        "Si = inv(S); T = Si @ (X - m).T; dS = (N * Si - T @ T.T) / 2",
        "Cookbook eqs. 57 and 61, S = Sᵀ (the Gaussian likelihood of N rows)"),
    Row("gauss_nll_mu_S", COOKBOOK, "X: N x D; mu: D; S: D x D spd",
        "R = X - mu; nll = N / 2 * logdet(S) + trace(R @ inv(S) @ R.T) / 2", "mu, S",
        "Si = inv(S); T = (X - mu) @ Si; dmu = -Si @ sum(X - mu, axis=0); dS = (N * Si - T.T @ T) / 2",
        "Cookbook eqs. 57, 61 and 86, S = Sᵀ (μ and Σ together)"),
    Row("mahalanobis_dist", COOKBOOK, "x, y: N; M: N x N spd", "sqrt((x - y) @ M @ (x - y))",
        "x, M", "r = x - y; f = sqrt(r @ M @ r); dx = M @ r / f; dM = outer(r, r) / (2 * f)",
        "Cookbook eqs. 81 and 86 and the chain rule, M = Mᵀ"),
    Row("gauss_kernel_A", COOKBOOK, "x: N; A: N x N spd", "exp(-x @ A @ x / 2)", "A",
        "f = exp(-x @ A @ x / 2); dA = -f * outer(x, x) / 2", "Cookbook eq. 81 and the chain rule"),
    Row("mahalanobis_S", COOKBOOK, "x, m: N; S: N x N spd", "(x - m) @ inv(S) @ (x - m)", "S",
        "Si = inv(S); r = x - m; dS = -Si @ outer(r, r) @ Si", "Cookbook eq. 61, S = Sᵀ"),
    Row("fro_XA_B", COOKBOOK, "X: N x M; A: M x K; B: N x K", "sum((X @ A - B) ** 2)", "X",
        "dX = 2 * (X @ A - B) @ A.T", "Cookbook eq. 132 and the chain rule"),
    Row("outer_inner", COOKBOOK, "a: N; b: M; X: N x M", "sum(outer(a, b) * X)", "X",
        "dX = outer(a, b)", "Cookbook eq. 70, aᵀXb = ⟨abᵀ, X⟩"),
    # -------------------------------------------------------------- seeds ---
    Row("seed000_affine", SEED, "X: N x D; W: D x K; b: K", "S = X @ W + b", "X, W, b",
        "dX = dS @ W.T; dW = X.T @ dS; db = sum(dS, axis=0)", "seed 000 (examples/affine.mc)"),
    Row("seed001_four_layer", SEED,
        "X: N x D; T: N x O; W1: D x H; B1: H; W2: H x H; B2: H; W3: H x H; B3: H; "
        "W4: H x O; B4: O",
        "Z1 = X @ W1 + B1; A1 = relu(Z1); Z2 = A1 @ W2 + B2; A2 = relu(Z2); "
        "Z3 = A2 @ W3 + B3; A3 = relu(Z3); Y = A3 @ W4 + B4; err = mean((Y - T) ** 2)",
        "W1, B1, W2, B2, W3, B3, W4, B4",
        "Z1 = X @ W1 + B1; A1 = relu(Z1); Z2 = A1 @ W2 + B2; A2 = relu(Z2); "
        "Z3 = A2 @ W3 + B3; A3 = relu(Z3); Y = A3 @ W4 + B4; dY = 2 / (N * O) * (Y - T); "
        "dZ3 = (dY @ W4.T) * step(Z3); dZ2 = (dZ3 @ W3.T) * step(Z2); "
        "dZ1 = (dZ2 @ W2.T) * step(Z1); "
        "dW1 = X.T @ dZ1; dB1 = sum(dZ1, axis=0); dW2 = A1.T @ dZ2; dB2 = sum(dZ2, axis=0); "
        "dW3 = A2.T @ dZ3; dB3 = sum(dZ3, axis=0); dW4 = A3.T @ dY; dB4 = sum(dY, axis=0)",
        "seed 001 (examples/seed001_four_layer.mc): DY = 2(Y − T), DZ3 = DY W4ᵀ ⊙ [Z3 > 0]"),
    Row("seed002_sigmoid_chain", SEED,
        "x, y, w1, b1, w2, b2, w3, b3: scalar",
        "z1 = w1 * x + b1; a1 = sigmoid(z1); z2 = w2 * a1 + b2; a2 = sigmoid(z2); "
        "z3 = w3 * a2 + b3; a3 = sigmoid(z3); C0 = (a3 - y) ** 2",
        "w1, b1, w2, b2, w3, b3",
        "z1 = w1 * x + b1; a1 = sigmoid(z1); z2 = w2 * a1 + b2; a2 = sigmoid(z2); "
        "z3 = w3 * a2 + b3; a3 = sigmoid(z3); dz3 = 2 * (a3 - y) * a3 * (1 - a3); "
        "dz2 = dz3 * w3 * a2 * (1 - a2); dz1 = dz2 * w2 * a1 * (1 - a1); "
        "dw1 = dz1 * x; db1 = dz1; dw2 = dz2 * a1; db2 = dz2; dw3 = dz3 * a2; db3 = dz3",
        "seed 002 (examples/sigmoid_chain.mc): ∂C0/∂w(L) = a(L−1) σ'(z(L)) 2(a(L) − y)"),
    Row("seed003_column_layout", SEED, "W: K x D; X: D x N; b: K",
        "Y = W @ X + b[:, None]; L = sum(Y ** 2) / 2", "W, X, b",
        "Y = W @ X + b[:, None]; dW = Y @ X.T; dX = W.T @ Y; db = sum(Y, axis=1)",
        "seed 003 (examples/column_layout.mc), eq. (17) corrected: dW = dY Xᵀ"),
    Row("seed004_product", SEED, "x, y, z: scalar", "(x + y) * (x + z)", "x, y, z",
        "q = x + y; r = x + z; dx = r + q; dy = r; dz = q",
        "seed 004: f = (x + y)(x + z), ∂f/∂x = (x + z) + (x + y)"),
    Row("seed004_mlp", SEED, "X: N x D; y: N x O; W1: D x H; b1: H; W2: H x O; b2: O",
        "h = X @ W1 + b1; h_relu = relu(h); pred = h_relu @ W2 + b2; "
        "loss = sum(square(y - pred))", "W1, b1, W2, b2",
        "h = X @ W1 + b1; h_relu = relu(h); pred = h_relu @ W2 + b2; "
        "dpred = 2 * (pred - y); dh = (dpred @ W2.T) * step(h); dW1 = X.T @ dh; "
        "db1 = sum(dh, axis=0); dW2 = h_relu.T @ dpred; db2 = sum(dpred, axis=0)",
        "seed 004 (examples/seed004.mc), its loop with dpred for db2"),
    Row("seed004_mlp_mean", SEED, MLP,
        "Z1 = X @ W1 + b1; loss = sum((relu(Z1) @ W2 + b2 - T) ** 2) / N", "W1, b1, W2, b2",
        "Z1 = X @ W1 + b1; A1 = relu(Z1); dY = 2 / N * (A1 @ W2 + b2 - T); "
        "dZ1 = (dY @ W2.T) * step(Z1); dW1 = X.T @ dZ1; db1 = sum(dZ1, axis=0); "
        "dW2 = A1.T @ dY; db2 = sum(dY, axis=0)", "seed 004 (examples/mlp.mc)"),
    Row("seed004_matmul", SEED, "W: K x D; X: D x N; G: K x N", "sum(G * (W @ X))", "W, X",
        "dW = G @ X.T; dX = W.T @ G", "seed 004: D = W X gives dW = dD Xᵀ, dX = Wᵀ dD"),
    # ---------------------------------------------------------- ML losses ---
    Row("least_squares", ML, "A: M x N; x: N; b: M", "sum((A @ x - b) ** 2)", "x",
        "r = A @ x - b; dx = 2 * A.T @ r", "normal equations"),
    Row("mse", ML, "X: N x D; w: D; y: N", "mean((X @ w - y) ** 2)", "w",
        "r = X @ w - y; dw = 2 / N * X.T @ r", "mean squared error"),
    Row("linreg_bias", ML, "X: N x D; w: D; b: scalar; y: N", "sum((X @ w + b - y) ** 2) / 2",
        "w, b", "r = X @ w + b - y; dw = X.T @ r; db = sum(r)", "linear regression"),
    Row("ridge", ML, "X: N x D; w: D; y: N; lam: scalar",
        "sum((X @ w - y) ** 2) + lam * sum(w ** 2)", "w",
        "r = X @ w - y; dw = 2 * X.T @ r + 2 * lam * w", "ridge regression"),
    Row("ridge_half", ML, "X: N x D; w: D; y: N; lam: scalar",
        "sum((X @ w - y) ** 2) / 2 + lam / 2 * (w @ w)", "w",
        "r = X @ w - y; dw = X.T @ r + lam * w", "ridge regression, halves"),
    Row("ridge_S", ML, "A: N x D; x: D; y: N; lam: scalar; S: D x D symmetric",
        "sum((A @ x - y) ** 2) + lam * (x @ S @ x)", "x",
        "r = A @ x - y; dx = 2 * A.T @ r + 2 * lam * S @ x",
        "generalised ridge (Tikhonov with xᵀSx); the issue"),
    Row("lasso", ML, "X: N x D; w: D; y: N; lam: scalar",
        "sum((X @ w - y) ** 2) / 2 + lam * norm1(w)", "w",
        "dw = X.T @ (X @ w - y) + lam * sign(w)", "lasso (a subgradient)"),
    Row("elastic_net", ML, "X: N x D; w: D; y: N; a, c: scalar",
        "sum((X @ w - y) ** 2) / 2 + a * norm1(w) + c / 2 * sum(w ** 2)", "w",
        "dw = X.T @ (X @ w - y) + a * sign(w) + c * w", "elastic net (a subgradient)"),
    Row("logistic_sign", ML, "X: N x D; y: N sign; w: D", "sum(softplus(-y * (X @ w)))", "w",
        "dw = -X.T @ (y * sigmoid(-y * (X @ w)))", "logistic regression, y = ±1"),
    Row("logistic_01", ML, "X: N x D; y: N; w: D", "sum(softplus(X @ w) - y * (X @ w))", "w",
        "dw = X.T @ (sigmoid(X @ w) - y)", "logistic regression, y ∈ {0, 1}"),
    Row("bce", ML, "X: N x D; y: N; w: D",
        "-sum(y * log(sigmoid(X @ w)) + (1 - y) * log(1 - sigmoid(X @ w)))", "w",
        "dw = X.T @ (sigmoid(X @ w) - y)", "binary cross-entropy of a sigmoid"),
    Row("logistic_mean_bias", ML, "X: N x D; y: N; w: D; b: scalar",
        "mean(softplus(X @ w + b) - y * (X @ w + b))", "w, b",
        "z = X @ w + b; e = (sigmoid(z) - y) / N; dw = X.T @ e; db = sum(e)",
        "logistic regression with a bias, mean loss"),
    Row("softmax_ce_onehot", ML, "X: N x D; Y: N x K onehot; W: D x K; b: K",
        "Z = X @ W + b; loss = -sum(Y * log(softmax(Z, axis=1))) / N", "W, b",
        "Z = X @ W + b; dZ = (softmax(Z, axis=1) - Y) / N; dW = X.T @ dZ; db = sum(dZ, axis=0)",
        "softmax classifier (examples/softmax_ce.mc)"),
    Row("softmax_ce_lse", ML, "X: N x D; Y: N x K onehot; W: D x K",
        "Z = X @ W; loss = sum(logsumexp(Z, axis=1)) - sum(Y * Z)", "W",
        "Z = X @ W; dW = X.T @ (softmax(Z, axis=1) - Y)", "cross-entropy as log-sum-exp"),
    Row("log_softmax", ML, "X: N x D; Y: N x K; W: D x K; b: K",
        "sum(Y * log(softmax(X @ W + b, axis=1)))", "W, b",
        "Z = X @ W + b; dZ = Y - sum(Y, axis=1)[:, None] * softmax(Z, axis=1); "
        "dW = X.T @ dZ; db = sum(dZ, axis=0)", "log-softmax with soft labels"),
    Row("log_softmax_explicit", ML, "X: N x D; Y: N x K; W: D x K; b: K",
        "sum(Y * (X @ W + b - logsumexp(X @ W + b, axis=1)[:, None]))", "W, b",
        "Z = X @ W + b; dZ = Y - sum(Y, axis=1)[:, None] * softmax(Z, axis=1); "
        "dW = X.T @ dZ; db = sum(dZ, axis=0)", "log-softmax written z − lse(z)"),
    Row("softmax_vector_ce", ML, "z: K; y: K onehot", "-y @ log(softmax(z))", "z",
        "dz = softmax(z) - y", "cross-entropy of one sample"),
    mlp("relu", "step(Z1)", "backpropagation through ReLU"),
    mlp("sigmoid", "A1 * (1 - A1)", "σ' = σ(1 − σ)"),
    mlp("tanh", "(1 - A1 ** 2)", "tanh' = 1 − tanh²"),
    mlp("softplus", "sigmoid(Z1)", "softplus' = σ"),
    mlp("exp", "A1", "exp' = exp"),
    mlp("sin", "cos(Z1)", "sin' = cos"),
    Row("weight_decay", ML, MLP + "; lam: scalar",
        "Z1 = X @ W1 + b1; A1 = relu(Z1); "
        "loss = sum((A1 @ W2 + b2 - T) ** 2) / N + lam / 2 * (sum(W1 ** 2) + sum(W2 ** 2))",
        "W1, W2",
        "Z1 = X @ W1 + b1; A1 = relu(Z1); dY = 2 / N * (A1 @ W2 + b2 - T); "
        "dZ1 = (dY @ W2.T) * step(Z1); dW1 = X.T @ dZ1 + lam * W1; dW2 = A1.T @ dY + lam * W2",
        "L2 weight decay; the issue's g0 = lam / 2"),
    Row("hinge", ML, "X: N x D; y: N sign; w: D; lam: scalar",
        "sum(relu(1 - y * (X @ w))) + lam / 2 * sum(w ** 2)", "w",
        "m = 1 - y * (X @ w); dw = lam * w - X.T @ (y * step(m))",
        "soft-margin SVM (a subgradient); the issue's 2 * (lam / 2)"),
    Row("hinge_maximum", ML, "X: N x D; y: N sign; w: D; lam: scalar",
        "sum(maximum(1 - y * (X @ w), 0)) + lam / 2 * sum(w ** 2)", "w",
        "m = 1 - y * (X @ w); dw = lam * w - X.T @ ((1 + sign(m)) * y) / 2",
        "soft-margin SVM with max (the tie split evenly)"),
    Row("squared_hinge", ML, "X: N x D; y: N sign; w: D",
        "sum(relu(1 - y * (X @ w)) ** 2)", "w",
        "dw = -2 * X.T @ (y * relu(1 - y * (X @ w)))", "squared hinge (L2-SVM)"),
    Row("layer_norm", ML, "X: N x D; G: N x D",
        "C = X - mean(X, axis=1)[:, None]; s = sqrt(mean(C ** 2, axis=1)); "
        "Y = C / s[:, None]; f = sum(G * Y)", "X",
        "C = X - mean(X, axis=1)[:, None]; s = sqrt(mean(C ** 2, axis=1)); Y = C / s[:, None]; "
        "dX = (G - mean(G, axis=1)[:, None] - Y * mean(G * Y, axis=1)[:, None]) / s[:, None]",
        "layer normalisation (Ba et al. 2016), backward pass"),
    Row("batch_norm", ML, "X: N x D; G: N x D",
        "C = X - mean(X, axis=0)[None, :]; s = sqrt(mean(C ** 2, axis=0)); "
        "Y = C / s[None, :]; f = sum(G * Y)", "X",
        "C = X - mean(X, axis=0)[None, :]; s = sqrt(mean(C ** 2, axis=0)); Y = C / s[None, :]; "
        "dX = (G - mean(G, axis=0) - Y * mean(G * Y, axis=0)) / s[None, :]",
        "batch normalisation (Ioffe & Szegedy 2015), backward pass"),
    Row("rms_norm", ML, "X: N x D; G: N x D",
        "r = sqrt(mean(X ** 2, axis=1)); Y = X / r[:, None]; f = sum(G * Y)", "X",
        "r = sqrt(mean(X ** 2, axis=1)); Y = X / r[:, None]; "
        "dX = (G - Y * mean(G * Y, axis=1)[:, None]) / r[:, None]",
        "RMS normalisation (Zhang & Sennrich 2019), backward pass"),
    Row("layer_norm_keepdims", ML, "X: N x D; G: N x D",
        "m = mean(X, axis=1, keepdims=True); C = X - m; "
        "s = sqrt(mean(C ** 2, axis=1, keepdims=True)); Y = C / s; f = sum(G * Y)", "X",
        "C = X - mean(X, axis=1, keepdims=True); s = sqrt(mean(C ** 2, axis=1, keepdims=True)); "
        "Y = C / s; dX = (G - mean(G, axis=1, keepdims=True) "
        "- Y * mean(G * Y, axis=1, keepdims=True)) / s",
        "layer normalisation of rows with keepdims (s an N x 1 array, not a column)"),
    Row("layer_norm_batched", ML, "X: B x T x D; G: B x T x D",
        "m = mean(X, axis=-1, keepdims=True); C = X - m; "
        "s = sqrt(mean(C ** 2, axis=-1, keepdims=True)); Y = C / s; f = sum(G * Y)", "X",
        "C = X - mean(X, axis=-1, keepdims=True); "
        "s = sqrt(mean(C ** 2, axis=-1, keepdims=True)); Y = C / s; "
        "dX = (G - mean(G, axis=-1, keepdims=True) "
        "- Y * mean(G * Y, axis=-1, keepdims=True)) / s",
        "layer normalisation over the last axis of a batch of sequences (keepdims)"),
    Row("layer_norm_batched_affine", ML, "X: B x T x D; gamma, beta: D; W: B x T x D",
        "m = mean(X, axis=-1, keepdims=True); s = var(X, axis=-1, keepdims=True); "
        "Y = (X - m) / sqrt(s + 1e-5) * gamma + beta; f = sum(Y * W)", "X, gamma, beta",
        "C = X - mean(X, axis=-1, keepdims=True); "
        "r = sqrt(mean(C ** 2, axis=-1, keepdims=True) + 1e-5); Xh = C / r; G = W * gamma; "
        "dX = (G - Xh * mean(G * Xh, axis=-1, keepdims=True) "
        "- mean(G, axis=-1, keepdims=True)) / r; "
        "dgamma = sum(W * Xh, axis=(0, 1)); dbeta = sum(W, axis=(0, 1))",
        "examples/batched_layernorm.mc: var with keepdims, scale gamma and shift beta"),
    Row("rms_norm_batched", ML, "X: B x T x D; G: B x T x D",
        "r = sqrt(mean(X ** 2, axis=-1, keepdims=True)); Y = X / r; f = sum(G * Y)", "X",
        "r = sqrt(mean(X ** 2, axis=-1, keepdims=True)); Y = X / r; "
        "dX = (G - Y * mean(G * Y, axis=-1, keepdims=True)) / r",
        "RMS normalisation over the last axis of a batch of sequences (keepdims)"),
    Row("unit_vector", ML, "x: N; g: N", "n = sqrt(sum(x ** 2)); y = x / n; f = sum(g * y)", "x",
        "n = sqrt(sum(x ** 2)); y = x / n; dx = (g - y * sum(g * y)) / n",
        "a vector scaled to unit length, backward pass"),
    Row("attention_V", ML, "Q: N x E; K: M x E; V: M x F; G: N x F",
        "sum(G * (softmax(Q @ K.T, axis=1) @ V))", "V",
        "P = softmax(Q @ K.T, axis=1); dV = P.T @ G", "attention, by the values"),
    Row("attention", ML, "Q: N x E; K: M x E; V: M x F; G: N x F",
        "P = softmax(Q @ K.T, axis=1); f = sum(G * (P @ V))", "Q, K, V",
        "P = softmax(Q @ K.T, axis=1); dP = G @ V.T; "
        "dS = P * (dP - sum(dP * P, axis=1)[:, None]); "
        "dQ = dS @ K; dK = dS.T @ Q; dV = P.T @ G", "attention softmax(Q Kᵀ) V, backward"),
    Row("mf", ML, "R: N x M; U: N x K; V: M x K", "sum((U @ V.T - R) ** 2)", "U, V",
        "E = U @ V.T - R; dU = 2 * E @ V; dV = 2 * E.T @ U", "matrix factorisation"),
    Row("mf_reg", ML, "R: N x M; U: N x K; V: M x K; lam: scalar",
        "sum((U @ V.T - R) ** 2) / 2 + lam / 2 * (sum(U ** 2) + sum(V ** 2))", "U, V",
        "E = U @ V.T - R; dU = E @ V + lam * U; dV = E.T @ U + lam * V",
        "regularised matrix factorisation"),
    Row("mf_masked", ML, "R: N x M; Mk: N x M; U: N x K; V: M x K",
        "sum(Mk * (U @ V.T - R) ** 2)", "U, V",
        "E = Mk * (U @ V.T - R); dU = 2 * E @ V; dV = 2 * E.T @ U",
        "matrix completion with a mask"),
    Row("gauss_S", ML, "X: N x D; S: D x D spd",
        "N / 2 * logdet(S) + sum((X @ inv(S)) * X) / 2", "S",
        "Si = inv(S); A = X @ Si; dS = (N * Si - A.T @ A) / 2",
        "Gaussian negative log-likelihood by the covariance"),
    Row("gauss_mu", ML, "X: N x D; mu: D; S: D x D spd",
        "sum(((X - mu) @ inv(S)) * (X - mu)) / 2", "mu",
        "dmu = -inv(S) @ sum(X - mu, axis=0)",
        "Gaussian negative log-likelihood by the mean"),
    Row("gauss_mle", ML, "X: N x D; mu: D; S: D x D symmetric",
        "N / 2 * logdet(S) + trace((X - mu) @ inv(S) @ (X - mu).T) / 2", "mu, S",
        "R = X - mu; Si = inv(S); A = R @ Si; dmu = -Si @ sum(R, axis=0); "
        "dS = (N * Si - A.T @ A) / 2",
        "Gaussian maximum likelihood by the mean and the covariance, written inline"),
    Row("gauss_mle_solve", ML, "X: N x D; mu: D; S: D x D spd",
        "R = X - mu; nll = 0.5 * sum(R.T * solve(S, R.T)) + N / 2 * log(det(S))", "mu, S",
        "R = X - mu; B = solve(S, R.T); dmu = -sum(B, axis=1); "
        "dS = N / 2 * inv(S) - 0.5 * (B @ B.T)",
        "Gaussian maximum likelihood through a solve"),
    Row("label_smoothing", ML, "X: N x D; Y: N x K onehot; W: D x K; b: K",
        "Ts = 0.9 * Y + 0.1 / K; loss = -sum(Ts * log_softmax(X @ W + b, axis=1)) / N", "W, b",
        "Ts = 0.9 * Y + 0.1 / K; E = softmax(X @ W + b, axis=1) - Ts; "
        "dW = X.T @ E / N; db = sum(E, axis=0) / N",
        "softmax cross-entropy with label smoothing (Szegedy et al. 2016): a smoothed "
        "target's rows sum to 1"),
    Row("distillation", ML, "Zt, Z: N x K; tau: scalar positive",
        "Pt = softmax(Zt / tau, axis=1); loss = -sum(Pt * log_softmax(Z / tau, axis=1)) / N",
        "Z", "Pt = softmax(Zt / tau, axis=1); dZ = (softmax(Z / tau, axis=1) - Pt) / (N * tau)",
        "knowledge distillation (Hinton et al. 2015): soft targets' rows sum to 1"),
    Row("kernel_ridge_expanded", ML, "Kk: N x N spd; a, y: N; lam: scalar",
        "0.5 * a @ Kk @ Kk @ a - y @ Kk @ a + lam / 2 * a @ Kk @ a", "a",
        "t0 = Kk @ a; da = Kk @ t0 - Kk @ y + lam * t0",
        "kernel ridge regression in the dual, expanded (Murphy, PML 17.3.9)"),
    Row("gp_rbf", ML, "X: N x D; y: N; s, noise: scalar positive",
        "sq = sum(X ** 2, axis=1); D2 = sq[:, None] + sq[None, :] - 2 * X @ X.T; "
        "Kr = exp(-D2 / 2); K = s * Kr + noise * eye(N); "
        "nll = 0.5 * y @ solve(K, y) + 0.5 * logdet(K)", "s, noise",
        "sq = sum(X ** 2, axis=1); D2 = sq[:, None] + sq[None, :] - 2 * X @ X.T; "
        "Kr = exp(-D2 / 2); K = s * Kr + noise * eye(N); Ki = inv(K); a = Ki @ y; "
        "G = 0.5 * (Ki - outer(a, a)); ds = sum(G * Kr); dnoise = trace(G)",
        "Gaussian-process marginal likelihood by the kernel's scale and the noise "
        "(Rasmussen and Williams, eq. 5.9)"),
    Row("gauss_scalar_var", ML, "X: N x D; w: D; y: N; s2: scalar positive",
        "sum((y - X @ w) ** 2) / (2 * s2) + N / 2 * log(s2)", "w, s2",
        "r = y - X @ w; dw = -X.T @ r / s2; ds2 = N / (2 * s2) - sum(r ** 2) / (2 * s2 ** 2)",
        "Gaussian likelihood of linear regression with its variance"),
    Row("poisson", ML, "X: N x D; y: N; w: D", "sum(exp(X @ w) - y * (X @ w))", "w",
        "dw = X.T @ (exp(X @ w) - y)", "Poisson regression"),
    Row("lse_vector", ML, "x: N", "logsumexp(x)", "x", "dx = softmax(x)", "log-sum-exp"),
    Row("rbf", ML, "x, z: D; gamma: scalar", "exp(-gamma * sum((x - z) ** 2))", "x",
        "r = x - z; k = exp(-gamma * sum(r ** 2)); dx = -2 * gamma * k * r", "RBF kernel"),
    Row("rbf_rows", ML, "X: N x D; x: D; a: N; gamma: scalar",
        "sum(a * exp(-gamma * sum((X - x) ** 2, axis=1)))", "x",
        "R = X - x; k = a * exp(-gamma * sum(R ** 2, axis=1)); dx = 2 * gamma * R.T @ k",
        "RBF kernel expansion ∑ aᵢ k(xᵢ, x)"),
    Row("pca", ML, "W: D x K; S: D x D symmetric", "trace(W.T @ S @ W)", "W",
        "dW = 2 * S @ W", "PCA objective tr(Wᵀ S W)"),
    Row("softmax_reg", ML, "X: N x D; Y: N x K onehot; W: D x K; lam: scalar",
        "Z = X @ W; loss = -sum(Y * log(softmax(Z, axis=1))) / N + lam / 2 * sum(W ** 2)", "W",
        "Z = X @ W; dW = X.T @ (softmax(Z, axis=1) - Y) / N + lam * W",
        "softmax regression with L2"),
    Row("mlp_softmax", ML, "X: N x D; Y: N x K onehot; W1: D x H; b1: H; W2: H x K; b2: K",
        "Z1 = X @ W1 + b1; A1 = relu(Z1); Z2 = A1 @ W2 + b2; "
        "loss = -sum(Y * log(softmax(Z2, axis=1))) / N", "W1, b1, W2, b2",
        "Z1 = X @ W1 + b1; A1 = relu(Z1); Z2 = A1 @ W2 + b2; "
        "dZ2 = (softmax(Z2, axis=1) - Y) / N; dZ1 = (dZ2 @ W2.T) * step(Z1); "
        "dW1 = X.T @ dZ1; db1 = sum(dZ1, axis=0); dW2 = A1.T @ dZ2; db2 = sum(dZ2, axis=0)",
        "a two-layer classifier"),
    Row("logistic_l2", ML, "X: N x D; y: N sign; w: D; lam: scalar",
        "sum(softplus(-y * (X @ w))) + lam / 2 * (w @ w)", "w",
        "dw = lam * w - X.T @ (y * sigmoid(-y * (X @ w)))", "L2-regularised logistic regression"),
    Row("tanh_regression", ML, "X: N x D; w: D; y: N", "sum((tanh(X @ w) - y) ** 2)", "w",
        "t = tanh(X @ w); dw = X.T @ (2 * (t - y) * (1 - t ** 2))", "a tanh unit, squared loss"),
    Row("autoencoder", ML, "X: N x D; W: D x K", "sum((X @ W @ W.T - X) ** 2)", "W",
        "E = X @ W @ W.T - X; dW = 2 * (X.T @ E @ W + E.T @ X @ W)", "a linear autoencoder"),
    Row("float_powers", ML, "x: N positive", "sum(x ** 0.5 * x ** 1.5)", "x", "dx = 2 * x",
        "x^a x^b = x^(a + b), with 2.0 an integer power"),
    Row("x_pow_x", ML, "x: scalar positive", "x ** x", "x", "f = x ** x; dx = f * (1 + log(x))",
        "d/dx xˣ = xˣ (1 + log x)"),
    Row("entropy", ML, "p: N positive", "-sum(p * log(p))", "p", "dp = -(log(p) + 1)",
        "entropy"),
    Row("kl", ML, "p, q: N positive", "sum(p * log(p / q))", "q", "dq = -p / q",
        "Kullback-Leibler divergence by q"),
    Row("l1_regression", ML, "X: N x D; w: D; y: N", "sum(abs(X @ w - y))", "w",
        "dw = X.T @ sign(X @ w - y)", "least absolute deviations (a subgradient)"),
    Row("exp_family", ML, "X: N x D; W: D x K", "sum(exp(X @ W))", "W",
        "dW = X.T @ exp(X @ W)", "a log-linear model's partition"),
    Row("cosine", ML, "x, y: N", "(x @ y) / (norm(x) * norm(y))", "x",
        "nx = norm(x); ny = norm(y); f = (x @ y) / (nx * ny); "
        "dx = y / (nx * ny) - f * x / nx ** 2",
        "cosine similarity: ∂ cos/∂x = y / (‖x‖‖y‖) − cos · x / ‖x‖²"),
    Row("mlp_bce", ML, "X: N x D; y: N; W1: D x H; b1: H; w2: H",
        "A1 = tanh(X @ W1 + b1); z = A1 @ w2; loss = sum(softplus(z) - y * z)", "W1, b1, w2",
        "A1 = tanh(X @ W1 + b1); z = A1 @ w2; dz = sigmoid(z) - y; "
        "dZ1 = outer(dz, w2) * (1 - A1 ** 2); dW1 = X.T @ dZ1; db1 = sum(dZ1, axis=0); "
        "dw2 = A1.T @ dz", "a tanh network with a logistic output"),
    Row("ridge_mean_bias", ML, "X: N x D; w: D; b: scalar; y: N; lam: scalar",
        "mean((X @ w + b - y) ** 2) + lam * (w @ w)", "w, b",
        "r = X @ w + b - y; dw = 2 / N * X.T @ r + 2 * lam * w; db = 2 / N * sum(r)",
        "ridge regression with an intercept, mean loss"),
    Row("temperature_lse", ML, "x: N; T: scalar positive", "T * logsumexp(x / T)", "x",
        "dx = softmax(x / T)", "smoothed maximum T log Σ exp(x / T)"),
    Row("quad_S", ML, "x, m: N; S: N x N symmetric", "(x - m) @ S @ (x - m) / 2", "x, S",
        "r = x - m; dx = S @ r; dS = outer(r, r) / 2", "a quadratic energy"),
    Row("tr_XAXtB", COOKBOOK, "X: N x M; A: M x M; B: N x N", "trace(X @ A @ X.T @ B)", "X",
        "dX = B @ X @ A + B.T @ X @ A.T", "Cookbook eq. 117 (cyclic)"),
]
