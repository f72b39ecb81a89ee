"""Tensor problems with reductions over axis tuples, keepdims and n-D
broadcasting, each with the same function written in jax.numpy.

`CORPUS` maps a name to (source, f): the matcalc text (declarations and
statements) and `f(v)`, the function of a dict of jax arrays by input name.
"""

from __future__ import annotations


def _jnp():
    import jax.numpy as jnp
    return jnp


def _nn():
    import jax.nn as nn
    return nn


def _layer_norm(v):
    jnp = _jnp()
    x = v["X"]
    m = jnp.mean(x, axis=-1, keepdims=True)
    s = jnp.var(x, axis=-1, keepdims=True)
    return jnp.sum(((x - m) / jnp.sqrt(s + 1e-5) * v["g"] + v["b"]) * v["W"])


BTD = "X: B x T x D\n"
CORPUS = {
    "layer_norm": (
        BTD + "g: D\nb: D\nW: B x T x D\nm = mean(X, axis=-1, keepdims=True)\n"
        "s = var(X, axis=-1, keepdims=True)\n"
        "f = sum(((X - m) / sqrt(s + 1e-5) * g + b) * W)", _layer_norm),
    "mean_pool": (
        BTD + "W: D x K\nf = sum(tanh(mean(X, axis=1) @ W))",
        lambda v: _jnp().sum(_jnp().tanh(_jnp().mean(v["X"], axis=1) @ v["W"]))),
    "max_pool": (
        BTD + "f = sum(max(X, axis=1) ** 2)",
        lambda v: _jnp().sum(_jnp().max(v["X"], axis=1) ** 2)),
    "max_pool_tuple": (
        BTD + "w: B\nf = max(X, axis=(1, 2)) @ w",
        lambda v: _jnp().max(v["X"], axis=(1, 2)) @ v["w"]),
    "min_keepdims": (
        BTD + "f = sum(min(X, axis=-1, keepdims=True) * X)",
        lambda v: _jnp().sum(_jnp().min(v["X"], axis=-1, keepdims=True) * v["X"])),
    "max_everything": (
        BTD + "f = max(X) * sum(X ** 2)",
        lambda v: _jnp().max(v["X"]) * _jnp().sum(v["X"] ** 2)),
    "softmax_last": (
        BTD + "V: B x T x D\nf = sum(softmax(X, axis=-1) * V)",
        lambda v: _jnp().sum(_nn().softmax(v["X"], axis=-1) * v["V"])),
    "softmax_tuple": (
        BTD + "V: B x T x D\nf = sum(softmax(X, axis=(0, 2)) * V)",
        lambda v: _jnp().sum(_nn().softmax(v["X"], axis=(0, 2)) * v["V"])),
    "cross_entropy": (
        BTD + "Y: B x T x D\nf = -sum(Y * log_softmax(X, axis=-1)) / B",
        lambda v: -_jnp().sum(v["Y"] * _nn().log_softmax(v["X"], axis=-1)) / v["X"].shape[0]),
    "cross_entropy_written": (
        BTD + "Y: B x T x D\nf = -mean(sum(Y * log(softmax(X, axis=2)), axis=2))",
        lambda v: -_jnp().mean(_jnp().sum(v["Y"] * _nn().log_softmax(v["X"], axis=2), axis=2))),
    "logsumexp_tuple": (
        BTD + "f = sum(logsumexp(X, axis=(1, 2)) ** 2)",
        lambda v: _jnp().sum(_lse(v["X"], (1, 2)) ** 2)),
    "logsumexp_keepdims": (
        BTD + "f = sum(logsumexp(X, axis=(0, 2), keepdims=True) * X)",
        lambda v: _jnp().sum(_lse(v["X"], (0, 2), True) * v["X"])),
    "var_tuple": (
        BTD + "f = sum(var(X, axis=(0, 1)) * exp(mean(X, axis=(0, 1))))",
        lambda v: _jnp().sum(_jnp().var(v["X"], axis=(0, 1))
                             * _jnp().exp(_jnp().mean(v["X"], axis=(0, 1))))),
    "std_ddof": (
        BTD + "f = sum(std(X, axis=-1, ddof=1))",
        lambda v: _jnp().sum(_jnp().std(v["X"], axis=-1, ddof=1))),
    "var_keepdims_all": (
        BTD + "f = sum(X / var(X, keepdims=True))",
        lambda v: _jnp().sum(v["X"] / _jnp().var(v["X"], keepdims=True))),
    "sum_keepdims": (
        BTD + "f = sum(X / sum(exp(X), axis=(1, 2), keepdims=True))",
        lambda v: _jnp().sum(v["X"] / _jnp().sum(_jnp().exp(v["X"]), axis=(1, 2),
                                                 keepdims=True))),
    "mean_centred": (
        BTD + "f = sum((X - mean(X, axis=(0, 2), keepdims=True)) ** 3)",
        lambda v: _jnp().sum((v["X"] - _jnp().mean(v["X"], axis=(0, 2), keepdims=True)) ** 3)),
    "max_keepdims_first": (
        BTD + "f = sum(exp(X - max(X, axis=0, keepdims=True)))",
        lambda v: _jnp().sum(_jnp().exp(v["X"] - _jnp().max(v["X"], axis=0, keepdims=True)))),
    "broadcast_vector": (
        BTD + "d: D\nf = sum(tanh(X + d) * X)",
        lambda v: _jnp().sum(_jnp().tanh(v["X"] + v["d"]) * v["X"])),
    "broadcast_column": (
        BTD + "c: T x 1\nf = sum((X * c) ** 2)",
        lambda v: _jnp().sum((v["X"] * v["c"]) ** 2)),
    "broadcast_leading_one": (
        BTD + "e: 1 x T x D\nf = sum(sin(X * e) + e ** 2)",
        lambda v: _jnp().sum(_jnp().sin(v["X"] * v["e"]) + v["e"] ** 2)),
    "broadcast_all": (
        BTD + "d: D\nc: T x 1\ne: 1 x T x D\nf = sum(logaddexp(X * d, c) / (2 + e ** 2))",
        lambda v: _jnp().sum(_jnp().logaddexp(v["X"] * v["d"], v["c"]) / (2 + v["e"] ** 2))),
    "order4_softmax": (
        "A: B x H x T x T\nV: B x H x T x T\nf = sum(softmax(A, axis=(2, 3)) * V)",
        lambda v: _jnp().sum(_nn().softmax(v["A"], axis=(2, 3)) * v["V"])),
    "order4_max": (
        "A: B x H x T x D\nf = sum(max(A, axis=(1, 3)) ** 2) + sum(min(A, axis=0))",
        lambda v: _jnp().sum(_jnp().max(v["A"], axis=(1, 3)) ** 2)
        + _jnp().sum(_jnp().min(v["A"], axis=0))),
    "order4_logsumexp": (
        "A: B x H x T x D\nf = sum(logsumexp(A, axis=(0, 2)) * mean(A, axis=(0, 2)))",
        lambda v: _jnp().sum(_lse(v["A"], (0, 2)) * _jnp().mean(v["A"], axis=(0, 2)))),
    "where_leaky": (
        BTD + "d: D\nf = sum(where(X > d, X, 0.1 * X) ** 2)",
        lambda v: _jnp().sum(_jnp().where(v["X"] > v["d"], v["X"], 0.1 * v["X"]) ** 2)),
    "clip_maximum": (
        BTD + "Y: B x T x D\ne: 1 x T x D\n"
        "f = sum(clip(X, -0.5, 0.5) * Y) + sum(maximum(X, e) * Y)",
        lambda v: _jnp().sum(_jnp().clip(v["X"], -0.5, 0.5) * v["Y"])
        + _jnp().sum(_jnp().maximum(v["X"], v["e"]) * v["Y"])),
    "cumsum_norm": (
        BTD + "f = sum(cumsum(X, axis=1) ** 2) + sum(norm(X, axis=-1))",
        lambda v: _jnp().sum(_jnp().cumsum(v["X"], axis=1) ** 2)
        + _jnp().sum(_jnp().linalg.norm(v["X"], axis=-1))),
    "causal_stack": (
        "S: B x T x T\nf = sum(triu(S, k=1) ** 2) + sum(tril(S) * S)",
        lambda v: _jnp().sum(_jnp().triu(v["S"], k=1) ** 2)
        + _jnp().sum(_jnp().tril(v["S"]) * v["S"])),
}


def _lse(x, axis, keepdims=False):
    import jax.scipy.special as special
    return special.logsumexp(x, axis=axis, keepdims=keepdims)
