"""A corpus of problems as users type them (textbook losses, ML layers,
matrix functions), each with the same function written by hand in
jax.numpy, the reference `test_user_corpus.py` checks every target and
library against (jax.grad, jax.jvp, jax.hessian, jax.jacobian in float64).

A problem is `U(id, text, ref, **options)`: `ref(xp, **inputs)` is the
function, written independently of matcalc with `xp` the reference
namespace (`J` below: jax.numpy plus the few functions JAX keeps in
jax.nn and jax.scipy); `options` are `hvp`, `hessian`, `jacobian` (as
`matcalc.compile` takes them) and `dims` (sizes other than `SIZES`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

# The sizes of the dimensions, all different so a transposed result fails.
SIZES = {"N": 5, "D": 3, "K": 4, "H": 6, "O": 2, "M": 3, "B": 2, "T": 3,
         "n": 4, "m": 5, "d": 3, "E": 2}
DOMAINS = ("symmetric", "spd", "onehot", "sign", "positive", "int")


@dataclass(frozen=True)
class U:
    id: str
    text: str
    ref: object = field(compare=False, hash=False)
    hvp: bool = False
    hessian: object = None
    jacobian: object = None
    dims: tuple = ()

    def options(self) -> dict:
        return {k: v for k, v in (("hvp", self.hvp), ("hessian", self.hessian),
                                  ("jacobian", self.jacobian)) if v}

    def declarations(self) -> dict:
        """name -> (shape as dimension names, domain or None)."""
        out = {}
        for line in re.split(r"[\n;]", self.text):
            line = line.split("#")[0].strip()
            head, colon, tail = line.partition(":")
            if not colon or "=" in head:
                continue
            words = tail.split()
            domain = words.pop() if words and words[-1] in DOMAINS else None
            domain = "spd" if domain == "positive" and "symmetric" in words else domain
            words = [w for w in words if w not in ("symmetric",)] if domain == "spd" else words
            if "symmetric" in words:
                words.remove("symmetric")
                domain = "symmetric"
            dims = () if words == ["scalar"] else tuple(
                w for w in re.split(r"\s*[x×*]\s*", " ".join(words)) if w)
            for name in head.split(","):
                out[name.strip()] = (dims, domain)
        return out

    def sizes(self) -> dict:
        sizes = {**SIZES, **dict(self.dims)}
        for name, a, b in re.findall(r"^\s*(\w+)\s*=\s*(\w+)\s*\*\s*(\w+)\s*$", self.text, re.M):
            sizes[name] = (int(a) if a.isdigit() else sizes[a]) * (int(b) if b.isdigit() else sizes[b])
        return sizes

    def wrt(self) -> list:
        found = re.search(r"^\s*wrt\s+(.*)$", self.text, re.M)
        decl = self.declarations()
        if found:
            return [w.strip() for w in found.group(1).split(",")]
        return [n for n, (_, dom) in decl.items() if dom not in ("sign", "onehot", "int")]

    def draw(self, seed: int = 0) -> dict:
        """Inputs in each variable's domain, float64 (indices int64)."""
        rng = np.random.default_rng(seed)
        sizes = self.sizes()
        out = {}
        for name, (dims, domain) in self.declarations().items():
            shape = tuple(int(d) if d.isdigit() else sizes[d] for d in dims)
            out[name] = _draw(rng, shape, domain)
        return out


def _draw(rng, shape, domain):
    if domain == "int":  # indices: every axis they index has at least 3 entries
        return rng.integers(0, 3, shape)
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "sign":
        return np.sign(rng.standard_normal(shape)) + (rng.standard_normal(shape) == 0)
    if domain == "onehot":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    if domain == "spd":
        a = rng.standard_normal(shape)
        return a @ a.T / shape[0] + np.eye(shape[0])
    if domain == "symmetric":
        a = rng.standard_normal(shape)
        return (a + a.T) / 2
    x = rng.standard_normal(shape)
    if len(shape) == 2 and shape[0] == shape[1]:  # well conditioned
        x = x / np.sqrt(shape[0]) + 2 * np.eye(shape[0])
    return x


class _Namespace:
    """jax.numpy with softplus, sigmoid, relu, logsumexp, softmax, erf and
    jax.nn's silu, gelu (exact), elu, leaky_relu and log_sigmoid."""

    def __getattr__(self, name):
        import jax
        import jax.numpy as jnp
        import jax.scipy.special as special
        extra = {"softplus": jax.nn.softplus, "sigmoid": jax.nn.sigmoid,
                 "relu": jax.nn.relu, "softmax": jax.nn.softmax,
                 "log_softmax": jax.nn.log_softmax, "logsumexp": special.logsumexp,
                 "erf": special.erf, "logdet": lambda a: jnp.linalg.slogdet(a)[1],
                 "silu": jax.nn.silu, "elu": jax.nn.elu, "leaky_relu": jax.nn.leaky_relu,
                 "gelu": lambda x: jax.nn.gelu(x, approximate=False),
                 "log_sigmoid": jax.nn.log_sigmoid}
        return extra[name] if name in extra else getattr(jnp, name)


J = _Namespace()


def _lstm(xp, G, c, V, T):
    """An LSTM step's squared error, its four gates sliced from G."""
    i, f, o, g = (G[:, k * c.shape[1]:(k + 1) * c.shape[1]] for k in range(4))
    cn = xp.sigmoid(f) * c + xp.sigmoid(i) * xp.tanh(g)
    return xp.sum((xp.sigmoid(o) * xp.tanh(cn) @ V - T) ** 2) / 2


def _sq(xp, a):
    return xp.sum(a ** 2)


LSQ = "A: N x D\nx: D\nb: N\n"
REG = "X: N x D\ny: N\nw: D\n"
CLS = "X: N x D\nW: D x K\nb: K\nY: N x K onehot\n"
MLP = "X: N x D\nW1: D x H\nb1: H\nW2: H x O\nb2: O\nT: N x O\n"

CORPUS = [
    # ---- least squares, ridge, lasso-smooth, robust regression
    U("lstsq_half_norm", LSQ + "f = 0.5 * norm(A @ x - b) ** 2\nwrt x",
      lambda xp, A, x, b: 0.5 * xp.linalg.norm(A @ x - b) ** 2, hvp=True, hessian=True),
    U("lstsq_all", LSQ + "f = sum((A @ x - b) ** 2)",
      lambda xp, A, x, b: _sq(xp, A @ x - b)),
    U("lstsq_matrix", "X: N x D\nW: D x K\nY: N x K\nloss = sum((X @ W - Y) ** 2) / (2 * N)\nwrt W",
      lambda xp, X, W, Y: _sq(xp, X @ W - Y) / (2 * X.shape[0]), hvp=True, hessian=True),
    U("ridge_mean", REG + "lam: scalar positive\nloss = mean((X @ w - y) ** 2) + lam * w @ w\nwrt w, lam",
      lambda xp, X, y, w, lam: xp.mean((X @ w - y) ** 2) + lam * w @ w, hvp=True),
    U("ridge_norms", REG + "lam: scalar positive\nloss = norm(X @ w - y) ** 2 + lam * norm(w) ** 2\nwrt w",
      lambda xp, X, y, w, lam: xp.linalg.norm(X @ w - y) ** 2 + lam * xp.linalg.norm(w) ** 2,
      hessian=True),
    U("ridge_transpose", REG + "lam: scalar\nJ = (X @ w - y).T @ (X @ w - y) + lam * w.T @ w\nwrt w",
      lambda xp, X, y, w, lam: (X @ w - y) @ (X @ w - y) + lam * w @ w, hvp=True),
    U("lasso_smooth", REG + "lam, eps: scalar positive\n"
      "f = 0.5 * sum((X @ w - y) ** 2) + lam * sum(sqrt(w ** 2 + eps))\nwrt w",
      lambda xp, X, y, w, lam, eps: 0.5 * _sq(xp, X @ w - y) + lam * xp.sum(xp.sqrt(w ** 2 + eps)),
      hvp=True, hessian=True),
    U("pseudo_huber", REG + "delta: scalar positive\n"
      "r = X @ w - y\nf = sum(delta ** 2 * (sqrt(1 + (r / delta) ** 2) - 1))\nwrt w, delta",
      lambda xp, X, y, w, delta: xp.sum(delta ** 2 * (xp.sqrt(1 + ((X @ w - y) / delta) ** 2) - 1)),
      hvp=True),
    U("elastic_net", REG + "alpha, beta: scalar positive\n"
      "f = sum((X @ w - y) ** 2) / N + alpha * norm1(w) + beta * w @ w\nwrt w",
      lambda xp, X, y, w, alpha, beta: _sq(xp, X @ w - y) / X.shape[0]
      + alpha * xp.sum(xp.abs(w)) + beta * w @ w),
    U("weighted_lstsq", REG + "c: N positive\nf = sum(c * (X @ w - y) ** 2)\nwrt w, c",
      lambda xp, X, y, w, c: xp.sum(c * (X @ w - y) ** 2)),
    # ---- logistic and softmax cross-entropy
    U("logistic_sign", "X: N x D\ny: N sign\nw: D\nb: scalar\n"
      "f = mean(log(1 + exp(-y * (X @ w + b))))",
      lambda xp, X, y, w, b: xp.mean(xp.log1p(xp.exp(-y * (X @ w + b)))), hvp=True),
    U("logistic_bce", REG + "p = sigmoid(X @ w)\nf = -sum(y * log(p) + (1 - y) * log(1 - p))\nwrt w",
      lambda xp, X, y, w: -xp.sum(y * xp.log(xp.sigmoid(X @ w))
                                  + (1 - y) * xp.log(1 - xp.sigmoid(X @ w))),
      hvp=True, hessian=True),
    U("logistic_softplus", "X: N x D\ny: N sign\nw: D\n"
      "f = sum(softplus(-y * (X @ w))) + 0.5 * sum(w ** 2)\nwrt w",
      lambda xp, X, y, w: xp.sum(xp.softplus(-y * (X @ w))) + 0.5 * xp.sum(w ** 2), hessian=True),
    U("softmax_ce_lse", CLS + "Z = X @ W + b\nloss = mean(logsumexp(Z, axis=1) - sum(Y * Z, axis=1))",
      lambda xp, X, W, b, Y: xp.mean(xp.logsumexp(X @ W + b, axis=1) - xp.sum(Y * (X @ W + b), axis=1)),
      hvp=True),
    U("softmax_ce_log", "X: N x D\nW: D x K\nY: N x K positive\n"
      "loss = -sum(Y * log(softmax(X @ W, axis=1))) / N\nwrt W",
      lambda xp, X, W, Y: -xp.sum(Y * xp.log(xp.softmax(X @ W, axis=1))) / X.shape[0], hessian=True),
    U("softmax_ce_log_softmax", CLS + "loss = -mean(sum(Y * log_softmax(X @ W + b, axis=-1), axis=-1))",
      lambda xp, X, W, b, Y: -xp.mean(xp.sum(Y * xp.log_softmax(X @ W + b, axis=-1), axis=-1))),
    U("softmax_ce_explicit", CLS + "Z = X @ W + b\n"
      "P = exp(Z) / sum(exp(Z), axis=1, keepdims=True)\nloss = -sum(Y * log(P)) / N",
      lambda xp, X, W, b, Y: -xp.sum(Y * xp.log_softmax(X @ W + b, axis=1)) / X.shape[0]),
    U("softmax_vector_ce", "z: K\ny: K onehot\nf = -y @ log(softmax(z))",
      lambda xp, z, y: -y @ xp.log_softmax(z), hessian=True),
    U("temperature_lse", "z: K\ntau: scalar positive\nf = tau * logsumexp(z / tau)",
      lambda xp, z, tau: tau * xp.logsumexp(z / tau), hvp=True),
    U("hinge_smooth", "X: N x D\ny: N sign\nw: D\nf = sum(softplus(1 - y * (X @ w)))",
      lambda xp, X, y, w: xp.sum(xp.softplus(1 - y * (X @ w)))),
    U("hinge_maximum", "X: N x D\ny: N sign\nw: D\nC: scalar positive\n"
      "f = 0.5 * w @ w + C * sum(maximum(0, 1 - y * (X @ w)))\nwrt w",
      lambda xp, X, y, w, C: 0.5 * w @ w + C * xp.sum(xp.maximum(0, 1 - y * (X @ w)))),
    U("logaddexp_glm", REG + "f = sum(logaddexp(0, X @ w) - y * (X @ w))\nwrt w",
      lambda xp, X, y, w: xp.sum(xp.logaddexp(0, X @ w) - y * (X @ w)), hessian=True),
    U("poisson_glm", "X: N x D\nw: D\ny: N positive\nf = sum(exp(X @ w) - y * (X @ w))\nwrt w",
      lambda xp, X, w, y: xp.sum(xp.exp(X @ w) - y * (X @ w)), hvp=True, hessian=True),
    # ---- networks
    U("mlp_relu_mse", MLP + "H1 = relu(X @ W1 + b1)\nloss = mean((H1 @ W2 + b2 - T) ** 2)",
      lambda xp, X, W1, b1, W2, b2, T: xp.mean((xp.relu(X @ W1 + b1) @ W2 + b2 - T) ** 2)),
    U("mlp_tanh_ce", "X: N x D\nW1: D x H\nb1: H\nW2: H x K\nb2: K\nY: N x K onehot\n"
      "Z = tanh(X @ W1 + b1) @ W2 + b2\nloss = -sum(Y * log_softmax(Z, axis=1)) / N",
      lambda xp, X, W1, b1, W2, b2, Y: -xp.sum(
          Y * xp.log_softmax(xp.tanh(X @ W1 + b1) @ W2 + b2, axis=1)) / X.shape[0]),
    U("mlp_sigmoid", MLP + "A1 = sigmoid(X @ W1 + b1)\nloss = 0.5 * sum((A1 @ W2 + b2 - T) ** 2)",
      lambda xp, X, W1, b1, W2, b2, T: 0.5 * _sq(xp, xp.sigmoid(X @ W1 + b1) @ W2 + b2 - T),
      hvp=True),
    U("mlp_softplus_3", "X: N x D\nW1: D x H\nW2: H x H\nW3: H x O\nT: N x O\n"
      "h1 = softplus(X @ W1)\nh2 = softplus(h1 @ W2)\nloss = sum((h2 @ W3 - T) ** 2)",
      lambda xp, X, W1, W2, W3, T: _sq(xp, xp.softplus(xp.softplus(X @ W1) @ W2) @ W3 - T)),
    U("mlp_gelu", MLP + "Z = X @ W1 + b1\nA = Z * (1 + erf(Z / sqrt(2))) / 2\n"
      "loss = sum((A @ W2 + b2 - T) ** 2)",
      lambda xp, X, W1, b1, W2, b2, T: _sq(xp, (lambda Z: Z * (1 + xp.erf(Z / xp.sqrt(2.0))) / 2)(
          X @ W1 + b1) @ W2 + b2 - T)),
    U("mlp_silu", MLP + "H1 = silu(X @ W1 + b1)\nloss = mean((H1 @ W2 + b2 - T) ** 2)",
      lambda xp, X, W1, b1, W2, b2, T: xp.mean((xp.silu(X @ W1 + b1) @ W2 + b2 - T) ** 2),
      hvp=True),
    U("mlp_gelu_exact", MLP + "loss = sum((gelu(X @ W1 + b1) @ W2 + b2 - T) ** 2)",
      lambda xp, X, W1, b1, W2, b2, T: _sq(xp, xp.gelu(X @ W1 + b1) @ W2 + b2 - T), hvp=True),
    U("mlp_elu", MLP + "H1 = elu(X @ W1 + b1, alpha=0.5)\nloss = sum((elu(H1 @ W2 + b2) - T) ** 2)",
      lambda xp, X, W1, b1, W2, b2, T: _sq(xp, xp.elu(xp.elu(X @ W1 + b1, 0.5) @ W2 + b2) - T),
      hvp=True),
    U("mlp_leaky_relu", MLP + "H1 = leaky_relu(X @ W1 + b1, negative_slope=0.2)\n"
      "loss = mean((leaky_relu(H1 @ W2 + b2) - T) ** 2)",
      lambda xp, X, W1, b1, W2, b2, T: xp.mean(
          (xp.leaky_relu(xp.leaky_relu(X @ W1 + b1, 0.2) @ W2 + b2) - T) ** 2)),
    U("mlp_log_sigmoid", "X: N x D\nW1: D x H\nb1: H\nw2: H\ny: N sign\n"
      "loss = -mean(log_sigmoid(y * (silu(X @ W1 + b1) @ w2))) - sum(logsigmoid(-w2 ** 2))",
      lambda xp, X, W1, b1, w2, y: -xp.mean(xp.log_sigmoid(y * (xp.silu(X @ W1 + b1) @ w2)))
      - xp.sum(xp.log_sigmoid(-w2 ** 2)), hvp=True),
    U("mlp_column_layout", "X: D x N\nW: H x D\nb: H\nv: H\ny: N\n"
      "f = sum((v @ tanh(W @ X + b[:, None]) - y) ** 2)\nwrt W, b, v",
      lambda xp, X, W, b, v, y: _sq(xp, v @ xp.tanh(W @ X + b[:, None]) - y)),
    U("autoencoder_tied", "X: N x D\nW: D x K\nc: K\n"
      "f = sum((sigmoid(X @ W + c) @ W.T - X) ** 2)\nwrt W, c",
      lambda xp, X, W, c: _sq(xp, xp.sigmoid(X @ W + c) @ W.T - X)),
    U("batchnorm", "X: N x D\ngamma, beta: D\nG: N x D\n"
      "Xh = (X - mean(X, axis=0)) / sqrt(var(X, axis=0) + 1e-5)\nf = sum(G * (gamma * Xh + beta))\n"
      "wrt X, gamma, beta",
      lambda xp, X, gamma, beta, G: xp.sum(G * (gamma * (X - xp.mean(X, axis=0))
                                                / xp.sqrt(xp.var(X, axis=0) + 1e-5) + beta))),
    U("rmsnorm", "X: N x D\ng: D\nG: N x D\n"
      "f = sum(G * g * X / sqrt(mean(X ** 2, axis=-1, keepdims=True) + 1e-6))\nwrt X, g",
      lambda xp, X, g, G: xp.sum(G * g * X / xp.sqrt(xp.mean(X ** 2, axis=-1, keepdims=True) + 1e-6))),
    U("batched_dense", "X: B x T x D\nW: D x K\nb: K\nf = sum(tanh(X @ W + b) ** 2)\nwrt W, b",
      lambda xp, X, W, b: xp.sum(xp.tanh(X @ W + b) ** 2)),
    U("rnn_two_steps", "x1, x2: N x D\nWx: D x H\nWh: H x H\nh1 = tanh(x1 @ Wx)\n"
      "h2 = tanh(x2 @ Wx + h1 @ Wh)\nf = sum(h2)\nwrt Wx, Wh",
      lambda xp, x1, x2, Wx, Wh: xp.sum(xp.tanh(x2 @ Wx + xp.tanh(x1 @ Wx) @ Wh))),
    # ---- attention
    U("attention_qkv", "Q: n x d\nK: m x d\nV: m x d\nT: n x d\n"
      "A = softmax(Q @ K.T / sqrt(d), axis=-1)\nloss = 0.5 * sum((A @ V - T) ** 2)\nwrt Q, K, V",
      lambda xp, Q, K, V, T: 0.5 * _sq(xp, xp.softmax(Q @ K.T / xp.sqrt(Q.shape[1]), axis=-1) @ V - T)),
    U("lstm_step", "F = H * 4\nX: N x D\nh, c: N x H\nWx: D x F\nWh: H x F\nb: F\nV: H x O\n"
      "T: N x O\nG = X @ Wx + h @ Wh + b\ni = sigmoid(G[:, 0:H])\nf = sigmoid(G[:, H:2*H])\n"
      "o = sigmoid(G[:, 2*H:3*H])\ng = tanh(G[:, 3*H:])\ncn = f * c + i * g\n"
      "loss = sum((o * tanh(cn) @ V - T) ** 2) / 2\nwrt Wx, Wh, b, h, c",
      lambda xp, X, h, c, Wx, Wh, b, V, T: _lstm(xp, X @ Wx + h @ Wh + b, c, V, T), hvp=True),
    U("self_attention", "X: N x D\nWq, Wk, Wv: D x E\nG: N x E\n"
      "S = (X @ Wq) @ (X @ Wk).T / sqrt(E)\nf = sum(G * (softmax(S, axis=1) @ (X @ Wv)))",
      lambda xp, X, Wq, Wk, Wv, G: xp.sum(G * (xp.softmax((X @ Wq) @ (X @ Wk).T / xp.sqrt(Wq.shape[1]),
                                                            axis=1) @ (X @ Wv)))),
    U("batched_attention", "S: B x T x T\nV: B x T x D\nf = sum(softmax(S, axis=-1) @ V) ** 2\nwrt S, V",
      lambda xp, S, V: xp.sum(xp.softmax(S, axis=-1) @ V) ** 2),
    U("causal_attention", "Q, K: T x D\nf = sum(softmax(where(tril(ones(T, T)) > 0, Q @ K.T, -1e9), axis=1) ** 2)",
      lambda xp, Q, K: xp.sum(xp.softmax(xp.where(xp.tril(xp.ones((Q.shape[0],) * 2)) > 0, Q @ K.T, -1e9),
                                         axis=1) ** 2)),
    # ---- Gaussians, Mahalanobis, log-determinants
    U("gauss_nll", "X: N x D\nmu: D\nS: D x D spd\nR = X - mu\n"
      "nll = N / 2 * logdet(S) + 0.5 * trace(R @ inv(S) @ R.T)\nwrt mu, S",
      lambda xp, X, mu, S: X.shape[0] / 2 * xp.logdet(S)
      + 0.5 * xp.trace((X - mu) @ xp.linalg.inv(S) @ (X - mu).T), hvp=True, hessian="S"),
    U("gauss_nll_solve", "X: N x D\nmu: D\nS: D x D spd\nR = X - mu\n"
      "nll = 0.5 * sum(R.T * solve(S, R.T)) + N / 2 * log(det(S))\nwrt mu, S",
      lambda xp, X, mu, S: 0.5 * xp.sum((X - mu).T * xp.linalg.solve(S, (X - mu).T))
      + X.shape[0] / 2 * xp.log(xp.linalg.det(S))),
    U("gauss_nll_full", "x: D\nmu: D\nS: D x D spd\n"
      "f = 0.5 * (x - mu) @ inv(S) @ (x - mu) + 0.5 * logdet(S) + D / 2 * log(2 * pi)",
      lambda xp, x, mu, S: 0.5 * (x - mu) @ xp.linalg.inv(S) @ (x - mu) + 0.5 * xp.logdet(S)
      + x.shape[0] / 2 * xp.log(2 * xp.pi)),
    U("mahalanobis", "x, mu: D\nS: D x D spd\nf = (x - mu) @ inv(S) @ (x - mu)\nwrt x",
      lambda xp, x, mu, S: (x - mu) @ xp.linalg.inv(S) @ (x - mu), hvp=True, hessian=True),
    U("mahalanobis_dist", "x, mu: D\nS: D x D spd\nd = x - mu\nf = sqrt(d @ solve(S, d))",
      lambda xp, x, mu, S: xp.sqrt((x - mu) @ xp.linalg.solve(S, x - mu))),
    U("gp_marginal", "K: N x N spd\ny: N\nf = 0.5 * y @ solve(K, y) + 0.5 * logdet(K)",
      lambda xp, K, y: 0.5 * y @ xp.linalg.solve(K, y) + 0.5 * xp.logdet(K)),
    U("gauss_kl", "m1, m2: D\nS1, S2: D x D spd\n"
      "kl = 0.5 * (trace(inv(S2) @ S1) + (m2 - m1) @ inv(S2) @ (m2 - m1) - D + logdet(S2) - logdet(S1))",
      lambda xp, m1, m2, S1, S2: 0.5 * (xp.trace(xp.linalg.inv(S2) @ S1)
                                        + (m2 - m1) @ xp.linalg.inv(S2) @ (m2 - m1)
                                        - m1.shape[0] + xp.logdet(S2) - xp.logdet(S1))),
    U("wishart_like", "S: D x D spd\nC: D x D spd\nnu: scalar positive\n"
      "f = nu * logdet(S) - trace(solve(C, S))\nwrt S, nu",
      lambda xp, S, C, nu: nu * xp.logdet(S) - xp.trace(xp.linalg.solve(C, S)), hvp=True),
    # ---- PCA, traces, Frobenius and vector norms
    U("pca_trace", "A: D x D symmetric\nW: D x K\nf = trace(W.T @ A @ W)\nwrt W",
      lambda xp, A, W: xp.trace(W.T @ A @ W), hvp=True, hessian=True, dims=(("K", 2),)),
    U("pca_reconstruction", "X: N x D\nW: D x K\nf = norm(X - X @ W @ W.T) ** 2\nwrt W",
      lambda xp, X, W: xp.linalg.norm(X - X @ W @ W.T) ** 2, hvp=True, dims=(("K", 2),)),
    U("frobenius_fit", "A: N x D\nB: D x K\nC: N x K\nf = norm(A @ B - C)\nwrt A, B",
      lambda xp, A, B, C: xp.linalg.norm(A @ B - C)),
    U("matrix_factorization", "R: N x M\nU: N x K\nV: M x K\nlam: scalar positive\n"
      "f = sum((R - U @ V.T) ** 2) + lam * (sum(U ** 2) + sum(V ** 2))\nwrt U, V",
      lambda xp, R, U, V, lam: _sq(xp, R - U @ V.T) + lam * (_sq(xp, U) + _sq(xp, V)), hvp=True),
    U("vector_norms", "x: D\nf = norm(x) + norm(x, ord=1) + norm(x) ** 2",
      lambda xp, x: xp.linalg.norm(x) + xp.sum(xp.abs(x)) + x @ x),
    U("row_norms", "X: N x D\nf = sum(norm(X, axis=1))",
      lambda xp, X: xp.sum(xp.linalg.norm(X, axis=1))),
    U("cosine", "x, y: D\nf = x @ y / (norm(x) * norm(y))",
      lambda xp, x, y: x @ y / (xp.linalg.norm(x) * xp.linalg.norm(y)), hvp=True),
    U("trace_product", "A: N x D\nB: D x N\nf = tr(A @ B) + trace(A.T @ A)",
      lambda xp, A, B: xp.trace(A @ B) + xp.trace(A.T @ A)),
    U("trace_cube", "A: N x N\nf = trace(A @ A @ A)",
      lambda xp, A: xp.trace(A @ A @ A), hvp=True, hessian=True),
    U("commutator", "X, A: N x N\nf = norm(A @ X - X @ A.T) ** 2\nwrt X",
      lambda xp, X, A: xp.linalg.norm(A @ X - X @ A.T) ** 2, hessian=True),
    # ---- kron, diag, inverse chains, det
    U("kron_quadratic", "M = 3\nD = M * K\nA: M x M\nB: K x K\nx: D\nf = x @ kron(A, B) @ x\nwrt A, B",
      lambda xp, A, B, x: x @ xp.kron(A, B) @ x, dims=(("K", 2),)),
    U("kron_sum_squares", "A: N x D\nB: K x K\nf = sum(kron(A, B) ** 2) + trace(kron(B, B))",
      lambda xp, A, B: xp.sum(xp.kron(A, B) ** 2) + xp.trace(xp.kron(B, B))),
    U("diag_scaling", "x: N\nA: N x N\nf = sum(diag(x) @ A @ diag(x))",
      lambda xp, x, A: xp.sum(xp.diag(x) @ A @ xp.diag(x)), hvp=True),
    U("diag_of_matrix", "A: N x N\nf = sum(diag(A) ** 2) + sum(exp(diag(A @ A.T) / 10))",
      lambda xp, A: xp.sum(xp.diag(A) ** 2) + xp.sum(xp.exp(xp.diag(A @ A.T) / 10)),
      dims=(("N", 3),)),
    U("inverse_chain", "A, B: N x N\nf = trace(inv(A) @ B @ inv(A))",
      lambda xp, A, B: xp.trace(xp.linalg.inv(A) @ B @ xp.linalg.inv(A))),
    U("inverse_sum", "A, B: N x N\nC = inv(A + B)\nf = sum(C * C)",
      lambda xp, A, B: xp.sum(xp.linalg.inv(A + B) ** 2)),
    U("inverse_frobenius", "A: N x N\nf = norm(inv(A)) ** 2\n",
      lambda xp, A: xp.linalg.norm(xp.linalg.inv(A)) ** 2, hvp=True),
    U("determinant", "A: N x N\nf = det(A)", lambda xp, A: xp.linalg.det(A), hessian=True),
    U("log_abs_det", "A: N x N\nf = log(abs(det(A))) + logdet(A)",
      lambda xp, A: 2 * xp.linalg.slogdet(A)[1]),
    U("det_of_product", "A: N x D\nf = log(det(A.T @ A))", lambda xp, A: xp.logdet(A.T @ A)),
    U("solve_vector", "A: N x N\nb: N\nx = solve(A, b)\nf = x @ x",
      lambda xp, A, b: _sq(xp, xp.linalg.solve(A, b)), hvp=True),
    U("rectangular_identity", "W: D x K\nf = norm(W - eye(D, K)) ** 2 + trace(inv(eye(D) + W @ W.T))",
      lambda xp, W: xp.linalg.norm(W - xp.eye(*W.shape)) ** 2
      + xp.trace(xp.linalg.inv(xp.eye(W.shape[0]) + W @ W.T))),
    U("inv_times_vector", "A: N x N\nb, c: N\nf = c @ inv(A) @ b",
      lambda xp, A, b, c: c @ xp.linalg.inv(A) @ b),
    U("trace_inverse_spd", "S: D x D spd\nA: D x D\nf = trace(inv(S)) + trace(A @ S)\nwrt S",
      lambda xp, S, A: xp.trace(xp.linalg.inv(S)) + xp.trace(A @ S), hvp=True, hessian=True),
    # ---- quadratic forms, elementwise functions, scalars, broadcasting
    U("quadratic_form", "x: N\nA: N x N\nf = x @ A @ x", lambda xp, x, A: x @ A @ x,
      hvp=True, hessian="x"),
    U("quadratic_prime", "x, b: N\nA: N x N symmetric\nc: scalar\nf = 0.5 * x' @ A @ x - b' @ x + c\nwrt x, b, c",
      lambda xp, x, b, A, c: 0.5 * x @ A @ x - b @ x + c, hessian="x"),
    U("powers", "x: N positive\nf = sum(x ** 3 - 2 * x ** 0.5 + 1 / x + x ** -2)",
      lambda xp, x: xp.sum(x ** 3 - 2 * x ** 0.5 + 1 / x + x ** -2.0), hvp=True, hessian=True),
    U("variable_exponent", "x: N positive\np: scalar\nf = sum(x ** p)",
      lambda xp, x, p: xp.sum(x ** p), hvp=True),
    U("exp_log", "x: N positive\nf = sum(exp(-x) * log(x)) + sum(log(1 + x ** 2))",
      lambda xp, x: xp.sum(xp.exp(-x) * xp.log(x)) + xp.sum(xp.log1p(x ** 2)), hessian=True),
    U("sqrt_division", "X: N x D positive\nf = sum(sqrt(X) / (1 + X))",
      lambda xp, X: xp.sum(xp.sqrt(X) / (1 + X))),
    U("trig_mix", "x: N\nf = sum(sin(x) * cos(2 * x) + arctan(x) + expm1(-x ** 2) + log1p(x ** 2))",
      lambda xp, x: xp.sum(xp.sin(x) * xp.cos(2 * x) + xp.arctan(x) + xp.expm1(-x ** 2)
                           + xp.log1p(x ** 2)), hvp=True),
    U("scalar_regression", "a, b: scalar\nx, y: N\nf = sum((a * x + b - y) ** 2)\nwrt a, b",
      lambda xp, a, b, x, y: xp.sum((a * x + b - y) ** 2), hvp=True),
    U("scalar_powers", "a: scalar positive\nx: N\nf = a ** 2 * sum(x) + exp(a) * log(a) + sqrt(a)",
      lambda xp, a, x: a ** 2 * xp.sum(x) + xp.exp(a) * xp.log(a) + xp.sqrt(a)),
    U("exponential_decay", "t, y: N\nA, k: scalar positive\nf = sum((A * exp(-k * t) - y) ** 2)\nwrt A, k",
      lambda xp, t, y, A, k: xp.sum((A * xp.exp(-k * t) - y) ** 2), hvp=True),
    U("row_bias", "X: N x D\nb: D\nc: N\nf = sum(exp(-(X + b) ** 2) * c[:, None])\nwrt b, c",
      lambda xp, X, b, c: xp.sum(xp.exp(-(X + b) ** 2) * c[:, None])),
    U("sum_axes", "X: N x D\nw: D\nf = sum(sum(X, axis=0) * w) + sum(sum(X ** 2, axis=1) ** 2)",
      lambda xp, X, w: xp.sum(xp.sum(X, axis=0) * w) + xp.sum(xp.sum(X ** 2, axis=1) ** 2)),
    U("sample_variance", "X: N x D\nf = sum((X - mean(X, axis=0)) ** 2) / (N - 1)",
      lambda xp, X: xp.sum((X - xp.mean(X, axis=0)) ** 2) / (X.shape[0] - 1), hvp=True),
    U("std_var", "X: N x D\nf = sum(std(X, axis=0)) + mean(var(X, axis=1, ddof=1))",
      lambda xp, X: xp.sum(xp.std(X, axis=0)) + xp.mean(xp.var(X, axis=1, ddof=1))),
    U("mean_all", "X: N x D\nW: D x K\nf = mean(tanh(X @ W))\nwrt W",
      lambda xp, X, W: xp.mean(xp.tanh(X @ W))),
    U("outer_fit", "u: N\nv: D\nA: N x D\nf = sum((A - outer(u, v)) ** 2)\nwrt u, v",
      lambda xp, u, v, A: _sq(xp, A - xp.outer(u, v)), hvp=True),
    U("outer_broadcast", "u: N\nv: D\nA: N x D\nf = norm(A - u[:, None] * v[None, :]) ** 2\nwrt u, v",
      lambda xp, u, v, A: xp.linalg.norm(A - u[:, None] * v[None, :]) ** 2),
    U("normalized_entropy", "X: N x D positive\nP = X / sum(X, axis=1, keepdims=True)\nf = -sum(P * log(P))",
      lambda xp, X: -xp.sum(X / xp.sum(X, axis=1, keepdims=True) * xp.log(X / xp.sum(X, axis=1, keepdims=True)))),
    U("kl_divergence", "p, q: K positive\nf = sum(p * log(p / q))",
      lambda xp, p, q: xp.sum(p * xp.log(p / q)), hvp=True),
    U("rbf_kernel_sum", "X: N x D\nell: scalar positive\n"
      "Kx = exp(-sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1) / (2 * ell ** 2))\nf = sum(Kx)",
      lambda xp, X, ell: xp.sum(xp.exp(-xp.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
                                       / (2 * ell ** 2)))),
    U("cholesky_fit", "L: N x N\nS: N x N spd\nf = sum((tril(L) @ tril(L).T - S) ** 2)\nwrt L",
      lambda xp, L, S: _sq(xp, xp.tril(L) @ xp.tril(L).T - S)),
    U("cumsum_where_clip", "x: N\nf = sum(cumsum(x) ** 2) + sum(where(x > 0, x ** 2, -x)) + sum(clip(x, -0.5, 0.5))",
      lambda xp, x: xp.sum(xp.cumsum(x) ** 2) + xp.sum(xp.where(x > 0, x ** 2, -x))
      + xp.sum(xp.clip(x, -0.5, 0.5))),
    U("einsum_bilinear", "x: D\ny: K\nW: D x K\nf = einsum('i,ij,j->', x, W, y) ** 2",
      lambda xp, x, y, W: xp.einsum('i,ij,j->', x, W, y) ** 2, hvp=True),
    U("sigmoid_chain", "x, w: N\nf = sum(sigmoid(w * sigmoid(x)))",
      lambda xp, x, w: xp.sum(xp.sigmoid(w * xp.sigmoid(x)))),
    U("max_pool_logits", "X: B x T x D\nw: D\nf = sum(softplus(max(X, axis=1) @ w))",
      lambda xp, X, w: xp.sum(xp.softplus(xp.max(X, axis=1) @ w))),
    # ---- arrays of any order, indexing, joining, integer inputs
    U("embedding_mean_pool", "tokens: B x T int\nlabels: B int\nE: V x D\nW: D x C\n"
      "h = mean(E[tokens], axis=1)\nloss = -sum(eye(C)[labels] * log_softmax(h @ W, axis=1)) / B",
      lambda xp, tokens, labels, E, W: -xp.sum(xp.eye(W.shape[1])[labels] * xp.log_softmax(
          xp.mean(E[tokens], axis=1) @ W, axis=1)) / tokens.shape[0], dims=(("V", 7), ("C", 3))),
    U("multihead_split", "H = 2\nD = H * E\nX: B x T x D\nW: D x D\n"
      "Q = reshape(X @ W, (B, T, H, E))\nf = sum(softmax(einsum('bthe,bshe->bhts', Q, Q), axis=-1) ** 2)",
      lambda xp, X, W: xp.sum(xp.softmax(xp.einsum('bthe,bshe->bhts', *(
          (X @ W).reshape(X.shape[0], X.shape[1], 2, -1),) * 2), axis=-1) ** 2)),
    U("stacked_matmul", "A: B x N x D\nW: D x K\nC: B x K x M\nf = sum(tanh(A @ W @ C))",
      lambda xp, A, W, C: xp.sum(xp.tanh(A @ W @ C))),
    U("batched_swapaxes", "Q, K: B x T x D\nf = sum(softmax(Q @ swapaxes(K, -1, -2) / sqrt(D), axis=-1) * Q[..., :1])",
      lambda xp, Q, K: xp.sum(xp.softmax(Q @ xp.swapaxes(K, -1, -2) / xp.sqrt(Q.shape[-1]), axis=-1)
                              * Q[..., :1])),
    U("einsum_trace_diag", "A: N x N\nx: N\nf = einsum('ii', A) * einsum('i,i->', x, einsum('ii->i', A))",
      lambda xp, A, x: xp.trace(A) * (x @ xp.diag(A))),
    U("index_slices", "X: N x D\nf = sum(X[:, 0] * X[:, -1]) + sum(X[1:] * X[:-1]) + sum(X[::-1] * X)",
      lambda xp, X: xp.sum(X[:, 0] * X[:, -1]) + xp.sum(X[1:] * X[:-1]) + xp.sum(X[::-1] * X)),
    U("concat_stack", "x, y: N\nA: N x D\nZ = concatenate((A, stack((x, y), axis=1)), axis=1)\n"
      "f = sum(Z @ Z.T)",
      lambda xp, x, y, A: xp.sum((lambda Z: Z @ Z.T)(xp.concatenate((A, xp.stack((x, y), axis=1)), axis=1)))),
    U("keepdims_centering", "X: B x T x D\nf = sum((X - mean(X, axis=(1, 2), keepdims=True)) ** 3)",
      lambda xp, X: xp.sum((X - xp.mean(X, axis=(1, 2), keepdims=True)) ** 3)),
    U("logsumexp_axes", "X: B x T x D\nf = sum(logsumexp(X, axis=(0, 2)) ** 2) + sum(max(X, axis=-1))",
      lambda xp, X: xp.sum(xp.logsumexp(X, axis=(0, 2)) ** 2) + xp.sum(xp.max(X, axis=-1))),
    U("transpose_3d", "X: B x T x D\nW: B x D\nf = sum(transpose(X, (0, 2, 1)) * W[:, :, None])",
      lambda xp, X, W: xp.sum(xp.transpose(X, (0, 2, 1)) * W[:, :, None])),
    # ---- array-valued functions (the upstream gradient dout; Jacobians)
    U("affine_layer", "X: N x D\nW: D x K\nb: K\nS = X @ W + b",
      lambda xp, X, W, b: X @ W + b),
    U("sigmoid_layer", "A: K x D\nx: D\nf = sigmoid(A @ x)\nwrt x",
      lambda xp, A, x: xp.sigmoid(A @ x), jacobian=True),
    U("softmax_vector", "z: K\np = softmax(z)", lambda xp, z: xp.softmax(z), jacobian=True),
    U("matrix_inverse", "A: N x N\nY = inv(A)", lambda xp, A: xp.linalg.inv(A)),
    U("normalize_vector", "x: D\nu = x / norm(x)", lambda xp, x: x / xp.linalg.norm(x), jacobian=True),
    U("gram_matrix", "X: N x D\nG = X.T @ X / N", lambda xp, X: X.T @ X / X.shape[0]),
]


assert len({u.id for u in CORPUS}) == len(CORPUS), "ids must be unique"
