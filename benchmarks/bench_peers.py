"""Benchmark matcalc's generated code against hand-written NumPy and AD peers.

    python benchmarks/bench_peers.py             # full run (~3 min on 2 idle cores)
    python benchmarks/bench_peers.py --quick     # smoke run: small sizes, few samples (~15 s)
    python benchmarks/bench_peers.py --only b,c  # some workloads
    python benchmarks/bench_peers.py --no-compile   # skip torch.compile (slow to compile)

Workloads (float64 everywhere):

  (a) two-layer MLP (examples/mlp.mc): value and gradient w.r.t. W1, b1, W2, b2;
  (b) logistic-regression Hessian, f(w) = sum(log(1 + exp(-y * (X @ w)))),
      labels declared `y: n sign` (each ±1), as the hand-written code assumes;
  (c) the same function's Hessian-vector product H v;
  (d) Gaussian negative log-likelihood w.r.t. an SPD covariance,
      f(S) = N/2 logdet(S) + 1/2 trace(solve(S, X.T @ X)): value and gradient;
  (e) matrix factorisation ||X - U V^T||^2 + lam (||U||^2 + ||V||^2):
      value and gradient w.r.t. U and V.

Implementations: matcalc's generated module, hand-written NumPy, jax.jit of
the matching transform, PyTorch eager, torch.compile (when it compiles on this
machine), and HIPS autograd. All are first checked to agree with the
hand-written result (np.allclose, rtol 1e-8, atol 1e-8 * max |reference|),
then timed in one process, samples interleaved (benchmarks/timing.py); the
generated / hand-written verdict is the median of the two sides' same-round
ratios (`timing.paired_ratio`).
Prints a table per workload; exits with 0 when every judged target passes and
nothing disagrees, else 1. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from bench_mlp import PROBLEM as MLP_PROBLEM  # noqa: E402  (this folder's scripts)
from bench_mlp import hand_written as mlp_hand_written  # noqa: E402
from bench_mlp import make_inputs as mlp_make_inputs  # noqa: E402
from timing import OtherLoad, QuietGuard, machine_lines, paired_ratio, race_many  # noqa: E402

TARGET_HAND = 1.05        # generated / hand-written, time
TARGET_JAX_HESS = 2.0     # jax.jit(jax.hessian) / generated, time, (b)
TARGET_TORCH_HESS = 20.0  # torch.func.hessian / generated, time, (b)

RTOL = 1e-8

FULL = dict(samples=31, sample_s=0.020, budget_s=3.0, min_samples=5, settle_s=0.05, wait_s=180.0)
QUICK = dict(samples=5, sample_s=0.005, budget_s=0.5, min_samples=3, settle_s=0.01, wait_s=20.0)
QUIET_SHARE = 0.10  # a round during which other processes use more of the CPUs is redone

SIZES = {
    "a": [(32, 100, 200, 10), (256, 784, 512, 10)],   # N, D, H, O
    "b": [(200, 50), (1000, 200)],                     # n, d
    "c": [(200, 50), (1000, 200)],                     # n, d
    "d": [(500, 50), (2000, 200)],                     # N, D
    "e": [(200, 150, 10), (1000, 800, 50)],            # m, n, k
}
SIZE_NAMES = {"a": "N,D,H,O", "b": "n,d", "c": "n,d", "d": "N,D", "e": "m,n,k"}

LOGISTIC_TEXT = """\
X: n x d
y: n sign
w: d
f = sum(log(1 + exp(-y * (X @ w))))
wrt w
"""

GAUSS_TEXT = """\
X: N x D
S: D x D spd
f = N / 2 * logdet(S) + 1 / 2 * trace(solve(S, X.T @ X))
wrt S
"""

MF_TEXT = """\
X: m x n
U: m x k
V: n x k
lam: scalar
f = sum((X - U @ V.T) ** 2) + lam * (sum(U ** 2) + sum(V ** 2))
wrt U, V
"""

MF_LAMBDA = 0.1

NOT_GENERATED = "n/a (not generated yet)"

HOW = {}  # "hessian"/"hvp" -> how the matcalc column's module was compiled


# --------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------

@dataclass
class Impl:
    """One implementation of a workload at one size."""
    name: str
    fn: object = None
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    to_np: object = None            # result -> tuple of numpy arrays (canonical)
    peer: bool = True               # counts for "fastest peer"
    status: str | None = None       # set when it cannot be timed (n/a, failed, mismatch)
    first_s: float | None = None    # first call (includes jit / compile)
    k: int = 0
    times: list = field(default_factory=list)

    @property
    def median(self):
        return statistics.median(self.times) if self.times else None


def _np(x):
    """A result value (NumPy, JAX, PyTorch, Python float) as a NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def canon(*parts):
    return tuple(_np(p) for p in parts)


def disagreement(result, reference) -> str | None:
    """None when `result` matches `reference` (tuples of arrays), else why not."""
    if len(result) != len(reference):
        return f"{len(result)} results, expected {len(reference)}"
    for i, (a, b) in enumerate(zip(result, reference)):
        if a.shape != b.shape:
            return f"result {i}: shape {a.shape} != {b.shape}"
        atol = RTOL * max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-300)
        if not np.all(np.isfinite(a)):
            return f"result {i}: not finite"
        if not np.allclose(a, b, rtol=RTOL, atol=atol):
            rel = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)
            return f"result {i}: max |diff| / max |ref| = {rel:.2e}"
    return None


def pick_array(result, shape):
    """The last array of `shape` inside a result (array, tuple, dict)."""
    found = None
    stack = [result]
    while stack:
        item = stack.pop(0)
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif np.shape(item) == shape:
            found = item
    if found is None:
        raise ValueError(f"no array of shape {shape} in the result")
    return found


class Peers:
    """The optional libraries, imported once, configured for float64."""

    def __init__(self, use_compile: bool):
        self.errors = {}
        self.use_compile = use_compile
        self.jax = self.jnp = self.torch = self.ag = self.anp = None
        try:
            import jax
            jax.config.update("jax_enable_x64", True)
            import jax.numpy as jnp
            self.jax, self.jnp = jax, jnp
        except Exception as e:  # not installed or broken
            self.errors["jax"] = f"{type(e).__name__}: {e}"
        try:
            import torch
            torch.set_num_threads(numpy_threads())
            self.torch = torch
        except Exception as e:
            self.errors["torch"] = f"{type(e).__name__}: {e}"
        try:
            import autograd
            import autograd.numpy as anp
            self.ag, self.anp = autograd, anp
        except Exception as e:
            self.errors["autograd"] = f"{type(e).__name__}: {e}"

    # inputs in each library's array type
    def j(self, *arrays):
        return tuple(self.jnp.asarray(a) for a in arrays)

    def t(self, *arrays):
        return tuple(self.torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)

    def t_leaf(self, *arrays):
        return tuple(self.torch.from_numpy(np.array(a)).requires_grad_() for a in arrays)

    def jit_call(self, fn):
        jax = self.jax
        return lambda *args: jax.block_until_ready(fn(*args))

    def compiled(self, fn):
        import torch
        return torch.compile(fn, dynamic=False)


def numpy_threads() -> int:
    """NumPy's BLAS thread count: the env setting, else one per usable CPU."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def unavailable(name, lib):
    return Impl(name, status=f"n/a ({lib} not importable)")


NO_COMPILE = "not run (--no-compile)"


def value_and_grad_pair(module, hand, inputs, flat):
    """The reference result and the two non-peer rows of a value-and-gradient
    workload: matcalc's `value_and_grad` and the hand-written function, each
    result read by `flat`."""
    return flat(hand(**inputs)), [
        Impl("matcalc generated", module.value_and_grad, kwargs=inputs, to_np=flat, peer=False),
        Impl("hand-written NumPy", hand, kwargs=inputs, to_np=flat, peer=False),
    ]


# (a) MLP ------------------------------------------------------------------

def workload_a(size, peers: Peers, module):
    N, D, H, O = size
    inputs = mlp_make_inputs(N, D, H, O)
    order = ("X", "T", "W1", "b1", "W2", "b2")
    arrays = [inputs[k] for k in order]
    ref, impls = value_and_grad_pair(module, mlp_hand_written, inputs,
                                     lambda r: canon(*_mlp_flat(r)))

    if peers.jax:
        jnp = peers.jnp

        def loss_j(X, T, W1, b1, W2, b2):
            return jnp.sum((jnp.maximum(X @ W1 + b1, 0) @ W2 + b2 - T) ** 2) / X.shape[0]
        f = peers.jit_call(peers.jax.jit(peers.jax.value_and_grad(loss_j, argnums=(2, 3, 4, 5))))
        impls.append(Impl("jax.jit(value_and_grad)", f, peers.j(*arrays),
                          to_np=lambda r: canon(r[0], *r[1])))
    else:
        impls.append(unavailable("jax.jit(value_and_grad)", "jax"))

    if peers.torch:
        torch = peers.torch

        def loss_t(X, T, W1, b1, W2, b2):
            return ((torch.relu(X @ W1 + b1) @ W2 + b2 - T) ** 2).sum() / X.shape[0]

        def eager(X, T, W1, b1, W2, b2):
            loss = loss_t(X, T, W1, b1, W2, b2)
            return loss, torch.autograd.grad(loss, (W1, b1, W2, b2))
        X, T = peers.t(inputs["X"], inputs["T"])
        leaves = peers.t_leaf(*arrays[2:])
        impls.append(Impl("torch eager (autograd.grad)", eager, (X, T, *leaves),
                          to_np=lambda r: canon(r[0], *r[1])))
        if peers.use_compile:
            gv = peers.compiled(torch.func.grad_and_value(loss_t, argnums=(2, 3, 4, 5)))
            impls.append(Impl("torch.compile(grad_and_value)", gv, peers.t(*arrays),
                              to_np=lambda r: canon(r[1], *r[0])))
        else:
            impls.append(Impl("torch.compile(grad_and_value)", status=NO_COMPILE))
    else:
        impls.append(unavailable("torch eager (autograd.grad)", "torch"))

    if peers.ag:
        anp = peers.anp

        def loss_a(X, T, W1, b1, W2, b2):
            return anp.sum((anp.maximum(anp.dot(X, W1) + b1, 0) @ W2 + b2 - T) ** 2) / X.shape[0]
        f = peers.ag.value_and_grad(loss_a, argnum=(2, 3, 4, 5))
        impls.append(Impl("autograd.value_and_grad", f, tuple(arrays),
                          to_np=lambda r: canon(r[0], *r[1])))
    else:
        impls.append(unavailable("autograd.value_and_grad", "autograd"))
    return ref, impls


def _mlp_flat(result):
    loss, grads = result
    return (loss, grads["W1"], grads["b1"], grads["W2"], grads["b2"])


# (b), (c) logistic regression -------------------------------------------------

def logistic_inputs(n, d, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((n, d)),
        "y": rng.choice([-1.0, 1.0], size=n),
        "w": rng.standard_normal(d) / np.sqrt(d),
    }


def logistic_hessian_hand(X, y, w):
    """H = X^T diag(s (1 - s)) X, s = sigmoid(y * (X @ w)); y**2 = 1 dropped."""
    s = 1 / (1 + np.exp(-y * (X @ w)))
    return (X.T * (s * (1 - s))) @ X


def logistic_hvp_hand(v, X, y, w):
    """H v = X^T (s (1 - s) * (X @ v)), s = sigmoid(y * (X @ w))."""
    s = 1 / (1 + np.exp(-y * (X @ w)))
    return X.T @ (s * (1 - s) * (X @ v))


def second_order_module(attr):
    """matcalc's module for the logistic problem with `attr` (hessian/hvp),
    or (None, reason). Uses whatever API exists: compile(text) first, then
    compile(text, <keyword>=value) for a keyword compile() accepts, the value
    True or the names to differentiate by (`compile(text, hessian=["w"])`)."""
    import matcalc
    try:
        mod = matcalc.compile(LOGISTIC_TEXT)
    except Exception as e:
        return None, f"failed: compile: {type(e).__name__}: {e}"
    if hasattr(mod, attr):
        HOW[attr] = f"module.{attr} from matcalc.compile(text)"
        return mod, None
    params = inspect.signature(matcalc.compile).parameters
    for kw in (attr, "second_order"):
        if kw not in params:
            continue
        for value in (True, list(mod.WRT)):
            try:
                with_attr = matcalc.compile(LOGISTIC_TEXT, **{kw: value})
            except Exception:
                continue
            if hasattr(with_attr, attr):
                HOW[attr] = f"module.{attr} from matcalc.compile(text, {kw}={value!r})"
                return with_attr, None
    return None, NOT_GENERATED


def _logistic_peers(peers: Peers, inputs, kind, v=None):
    X, y, w = inputs["X"], inputs["y"], inputs["w"]
    hess = kind == "hessian"
    impls = []
    if peers.jax:
        jax, jnp = peers.jax, peers.jnp

        def f_j(w, X, y):
            return jnp.sum(jnp.log(1 + jnp.exp(-y * (X @ w))))
        if kind == "hessian":
            impls.append(Impl("jax.jit(jax.hessian)", peers.jit_call(jax.jit(jax.hessian(f_j))),
                              peers.j(w, X, y), to_np=canon))
        else:
            def hvp_j(w, v, X, y):
                return jax.jvp(lambda u: jax.grad(f_j)(u, X, y), (w,), (v,))[1]
            impls.append(Impl("jax.jit(jvp of grad)", peers.jit_call(jax.jit(hvp_j)),
                              peers.j(w, v, X, y), to_np=canon))
    else:
        impls.append(unavailable("jax.jit(jax.hessian)" if hess else "jax.jit(jvp of grad)", "jax"))

    if peers.torch:
        torch = peers.torch

        def f_t(w, X, y):
            return torch.log(1 + torch.exp(-y * (X @ w))).sum()
        if kind == "hessian":
            h = torch.func.hessian(f_t)
            impls.append(Impl("torch.func.hessian", h, peers.t(w, X, y), to_np=canon))
            if peers.use_compile:
                impls.append(Impl("torch.compile(func.hessian)", peers.compiled(torch.func.hessian(f_t)),
                                  peers.t(w, X, y), to_np=canon))
            else:
                impls.append(Impl("torch.compile(func.hessian)", status=NO_COMPILE))
        else:
            def hvp_t(w, v, X, y):
                return torch.func.jvp(lambda u: torch.func.grad(f_t)(u, X, y), (w,), (v,))[1]
            impls.append(Impl("torch.func.jvp of grad", hvp_t, peers.t(w, v, X, y), to_np=canon))
            if peers.use_compile:
                def hvp_t2(w, v, X, y):
                    return torch.func.jvp(lambda u: torch.func.grad(f_t)(u, X, y), (w,), (v,))[1]
                impls.append(Impl("torch.compile(jvp of grad)", peers.compiled(hvp_t2),
                                  peers.t(w, v, X, y), to_np=canon))
            else:
                impls.append(Impl("torch.compile(jvp of grad)", status=NO_COMPILE))
    else:
        impls.append(unavailable("torch.func.hessian" if hess else "torch.func.jvp of grad", "torch"))

    if peers.ag:
        anp = peers.anp

        def f_a(w, X, y):
            return anp.sum(anp.log(1 + anp.exp(-y * anp.dot(X, w))))
        if kind == "hessian":
            impls.append(Impl("autograd.hessian", peers.ag.hessian(f_a), (w, X, y), to_np=canon))
        else:
            impls.append(Impl("autograd.hessian_vector_product",
                              peers.ag.hessian_vector_product(f_a), (w, X, y, v), to_np=canon))
    else:
        name = "autograd.hessian" if hess else "autograd.hessian_vector_product"
        impls.append(unavailable(name, "autograd"))
    return impls


def workload_b(size, peers: Peers, module):
    n, d = size
    inputs = logistic_inputs(n, d)
    ref = canon(logistic_hessian_hand(**inputs))
    mod, why = module
    if mod is None:
        gen = Impl("matcalc generated", status=why, peer=False)
    else:
        gen = Impl("matcalc generated", mod.hessian, kwargs=inputs, peer=False,
                   to_np=lambda r: canon(pick_array(r, (d, d))))
    impls = [gen, Impl("hand-written NumPy", logistic_hessian_hand, kwargs=inputs,
                       to_np=canon, peer=False)]
    return ref, impls + _logistic_peers(peers, inputs, "hessian")


def workload_c(size, peers: Peers, module):
    n, d = size
    inputs = logistic_inputs(n, d)
    v = np.random.default_rng(1).standard_normal(d)
    ref = canon(logistic_hvp_hand(v, **inputs))
    mod, why = module
    if mod is None:
        gen = Impl("matcalc generated", status=why, peer=False)
    else:
        gen = Impl("matcalc generated", mod.hvp, (v,), kwargs=inputs, peer=False,
                   to_np=lambda r: canon(pick_array(r, (d,))))
    impls = [gen, Impl("hand-written NumPy", logistic_hvp_hand, (v,), kwargs=inputs,
                       to_np=canon, peer=False)]
    return ref, impls + _logistic_peers(peers, inputs, "hvp", v)


# (d) Gaussian NLL w.r.t. an SPD covariance ---------------------------------

def gauss_inputs(N, D, seed=0):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((D, D))
    return {"X": rng.standard_normal((N, D)), "S": B @ B.T / D + np.eye(D)}


def gauss_hand(X, S):
    """f = N/2 logdet S + 1/2 tr(S^-1 C), C = X^T X; the symmetric gradient
    G = (N S^-1 - S^-1 C S^-1) / 2 (already symmetric, no symmetrising)."""
    N = X.shape[0]
    C = X.T @ X
    Sinv = np.linalg.inv(S)
    A = Sinv @ C
    f = N / 2 * np.linalg.slogdet(S)[1] + np.trace(A) / 2
    return f, {"S": (N * Sinv - A @ Sinv) / 2}


def workload_d(size, peers: Peers, module):
    N, D = size
    inputs = gauss_inputs(N, D)
    X, S = inputs["X"], inputs["S"]
    ref, impls = value_and_grad_pair(module, gauss_hand, inputs,
                                     lambda r: canon(r[0], r[1]["S"]))
    # Peers differentiate by all D*D entries of S: G0. The symmetric gradient
    # matcalc returns is (G0 + G0^T) / 2; each peer symmetrises inside the
    # timed function (here G0 is symmetric already, so only rounding changes).
    if peers.jax:
        jax, jnp = peers.jax, peers.jnp

        def f_j(X, S):
            return X.shape[0] / 2 * jnp.linalg.slogdet(S)[1] + jnp.trace(jnp.linalg.solve(S, X.T @ X)) / 2

        def vg_j(X, S):
            value, g = jax.value_and_grad(f_j, argnums=1)(X, S)
            return value, (g + g.T) / 2
        impls.append(Impl("jax.jit(value_and_grad)", peers.jit_call(jax.jit(vg_j)),
                          peers.j(X, S), to_np=lambda r: canon(*r)))
    else:
        impls.append(unavailable("jax.jit(value_and_grad)", "jax"))

    if peers.torch:
        torch = peers.torch

        def f_t(X, S):
            return X.shape[0] / 2 * torch.linalg.slogdet(S)[1] + torch.trace(torch.linalg.solve(S, X.T @ X)) / 2

        def eager(X, S):
            value = f_t(X, S)
            (g,) = torch.autograd.grad(value, (S,))
            return value, (g + g.T) / 2
        impls.append(Impl("torch eager (autograd.grad)", eager, (*peers.t(X), *peers.t_leaf(S)),
                          to_np=lambda r: canon(*r)))
        if peers.use_compile:
            gv = torch.func.grad_and_value(f_t, argnums=1)

            def vg_t(X, S):
                g, value = gv(X, S)
                return value, (g + g.T) / 2
            impls.append(Impl("torch.compile(grad_and_value)", peers.compiled(vg_t), peers.t(X, S),
                              to_np=lambda r: canon(*r)))
        else:
            impls.append(Impl("torch.compile(grad_and_value)", status=NO_COMPILE))
    else:
        impls.append(unavailable("torch eager (autograd.grad)", "torch"))

    if peers.ag:
        anp = peers.anp

        def f_a(X, S):
            return X.shape[0] / 2 * anp.linalg.slogdet(S)[1] + anp.trace(anp.linalg.solve(S, anp.dot(X.T, X))) / 2
        vg = peers.ag.value_and_grad(f_a, argnum=1)

        def vg_a(X, S):
            value, g = vg(X, S)
            return value, (g + g.T) / 2
        impls.append(Impl("autograd.value_and_grad", vg_a, (X, S), to_np=lambda r: canon(*r)))
    else:
        impls.append(unavailable("autograd.value_and_grad", "autograd"))
    return ref, impls


# (e) matrix factorisation ---------------------------------------------------

def mf_inputs(m, n, k, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((m, n)),
        "U": rng.standard_normal((m, k)) / np.sqrt(k),
        "V": rng.standard_normal((n, k)) / np.sqrt(k),
        "lam": MF_LAMBDA,
    }


def mf_hand(X, U, V, lam):
    R = U @ V.T - X
    f = (R ** 2).sum() + lam * ((U ** 2).sum() + (V ** 2).sum())
    return f, {"U": 2 * (R @ V + lam * U), "V": 2 * (R.T @ U + lam * V)}


def workload_e(size, peers: Peers, module):
    m, n, k = size
    inputs = mf_inputs(m, n, k)
    X, U, V, lam = inputs["X"], inputs["U"], inputs["V"], inputs["lam"]
    ref, impls = value_and_grad_pair(module, mf_hand, inputs,
                                     lambda r: canon(r[0], r[1]["U"], r[1]["V"]))
    if peers.jax:
        jax, jnp = peers.jax, peers.jnp

        def f_j(U, V, X, lam):
            return jnp.sum((X - U @ V.T) ** 2) + lam * (jnp.sum(U ** 2) + jnp.sum(V ** 2))
        f = peers.jit_call(jax.jit(jax.value_and_grad(f_j, argnums=(0, 1))))
        impls.append(Impl("jax.jit(value_and_grad)", f, peers.j(U, V, X, np.float64(lam)),
                          to_np=lambda r: canon(r[0], *r[1])))
    else:
        impls.append(unavailable("jax.jit(value_and_grad)", "jax"))

    if peers.torch:
        torch = peers.torch

        def f_t(U, V, X, lam):
            return ((X - U @ V.T) ** 2).sum() + lam * ((U ** 2).sum() + (V ** 2).sum())

        def eager(U, V, X, lam):
            value = f_t(U, V, X, lam)
            return value, torch.autograd.grad(value, (U, V))
        impls.append(Impl("torch eager (autograd.grad)", eager, (*peers.t_leaf(U, V), *peers.t(X), lam),
                          to_np=lambda r: canon(r[0], *r[1])))
        if peers.use_compile:
            gv = peers.compiled(torch.func.grad_and_value(f_t, argnums=(0, 1)))
            impls.append(Impl("torch.compile(grad_and_value)", gv, (*peers.t(U, V, X), lam),
                              to_np=lambda r: canon(r[1], *r[0])))
        else:
            impls.append(Impl("torch.compile(grad_and_value)", status=NO_COMPILE))
    else:
        impls.append(unavailable("torch eager (autograd.grad)", "torch"))

    if peers.ag:
        anp = peers.anp

        def f_a(U, V, X, lam):
            return anp.sum((X - anp.dot(U, V.T)) ** 2) + lam * (anp.sum(U ** 2) + anp.sum(V ** 2))
        impls.append(Impl("autograd.value_and_grad", peers.ag.value_and_grad(f_a, argnum=(0, 1)),
                          (U, V, X, lam), to_np=lambda r: canon(r[0], *r[1])))
    else:
        impls.append(unavailable("autograd.value_and_grad", "autograd"))
    return ref, impls


# --------------------------------------------------------------------------
# Running and reporting
# --------------------------------------------------------------------------

TITLES = {
    "a": "(a) two-layer MLP (examples/mlp.mc): value and gradient w.r.t. W1, b1, W2, b2",
    "b": "(b) logistic regression f(w) = sum(log(1 + exp(-y * (X @ w)))), y: n sign (±1): Hessian",
    "c": "(c) the same f: Hessian-vector product H v",
    "d": "(d) Gaussian NLL N/2 logdet(S) + 1/2 trace(solve(S, X.T @ X)), S spd: value and gradient w.r.t. S",
    "e": "(e) matrix factorisation ||X - U V^T||^2 + lam (||U||^2 + ||V||^2), lam = 0.1: value and gradient w.r.t. U, V",
}
BUILDERS = {"a": workload_a, "b": workload_b, "c": workload_c, "d": workload_d, "e": workload_e}


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:70]


def prepare(impls, ref):
    """First call of each implementation (timed: includes jit/compile), then
    the agreement check; failures become a status instead of a timing."""
    for impl in impls:
        if impl.status is not None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                start = time.perf_counter()
                result = impl.fn(*impl.args, **impl.kwargs)
                impl.first_s = time.perf_counter() - start
            except Exception as e:
                impl.status = f"failed: {first_line(e)}"
                if os.environ.get("BENCH_DEBUG"):
                    traceback.print_exc()
                continue
        why = disagreement(impl.to_np(result), ref)
        if why:
            impl.status = f"MISMATCH: {why}"


def fmt_time(s):
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1e3:.3f} ms"


def report(key, rows, lines, verdicts):
    """rows: [(size, impls)]; appends the table to lines, judged targets to verdicts."""
    lines.append(TITLES[key])
    how = HOW.get({"b": "hessian", "c": "hvp"}.get(key, ""), "module.value_and_grad from matcalc.compile(text)")
    lines.append(f"   matcalc column: {how}")
    for size, impls in rows:
        by = {i.name: i for i in impls}
        gen, hand = by["matcalc generated"], by["hand-written NumPy"]
        lines.append(f"   {SIZE_NAMES[key]} = {','.join(map(str, size))}")
        lines.append(f"     {'implementation':<33} {'median':>11} {'min':>11} {'first call':>11}"
                     f" {'samples x k':>12} {'/ hand':>8} {'gen / this':>10}")
        for impl in impls:
            if impl.status is not None:
                lines.append(f"     {impl.name:<33} {impl.status}")
                continue
            med = impl.median
            rel_hand = f"{med / hand.median:8.3f}" if hand.median else f"{'-':>8}"
            rel_gen = f"{gen.median / med:10.3f}" if gen.median else f"{'-':>10}"
            lines.append(f"     {impl.name:<33} {fmt_time(med):>11} {fmt_time(min(impl.times)):>11}"
                         f" {fmt_time(impl.first_s):>11} {f'{len(impl.times)} x {impl.k}':>12}"
                         f" {rel_hand} {rel_gen}")
        label = f"({key}) {','.join(map(str, size))}"
        if gen.median is None:
            lines.append(f"     generated / hand-written       n/a   (matcalc: {gen.status})")
            verdicts.append((f"{label} generated / hand <= {TARGET_HAND}", None))
            if key == "b":
                verdicts.append((f"{label} jax.hessian / generated >= {TARGET_JAX_HESS}", None))
                verdicts.append((f"{label} torch.func.hessian / generated >= {TARGET_TORCH_HESS}", None))
            continue
        ratio, paired = paired_ratio(gen.times, hand.times)
        ok = ratio <= TARGET_HAND
        verdicts.append((f"{label} generated / hand <= {TARGET_HAND}", ok))
        how = (f"median of same-round ratios; ratio of medians {gen.median / hand.median:.3f}"
               if paired else "ratio of medians: the sides' samples do not pair by round")
        lines.append(f"     generated / hand-written       {ratio:7.3f}   target <= {TARGET_HAND:.2f}"
                     f" {'PASS' if ok else 'FAIL'} ({how})")
        timed_peers = [i for i in impls if i.peer and i.median is not None]
        if timed_peers:
            best = min(timed_peers, key=lambda i: i.median)
            r = gen.median / best.median
            words = (f"generated {1 / r:.2f}x faster" if r < 1 else f"generated {r:.2f}x slower")
            verdicts.append((f"{label} generated faster than the fastest peer", r < 1))
            lines.append(f"     generated / fastest peer       {r:7.3f}   target < 1 {'PASS' if r < 1 else 'FAIL'}"
                         f" ({best.name}, {fmt_time(best.median)}: {words})")
        if key == "b":
            for name, target in (("jax.jit(jax.hessian)", TARGET_JAX_HESS),
                                 ("torch.func.hessian", TARGET_TORCH_HESS)):
                peer = by.get(name)
                label2 = f"{label} {name} / generated >= {target:g}"
                if peer is None or peer.median is None:
                    verdicts.append((label2, None))
                    lines.append(f"     {name} / generated   n/a")
                    continue
                speed = peer.median / gen.median
                ok = speed >= target
                verdicts.append((label2, ok))
                lines.append(f"     {name + ' / generated':<30} {speed:7.2f}   target >= {target:g}"
                             f" {'PASS' if ok else 'FAIL'}")
    lines.append("")


def matcalc_revision() -> str:
    """The git commit of the checkout matcalc is imported from, if any."""
    import subprocess
    import matcalc
    where = Path(matcalc.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    if head.returncode != 0:
        return ""
    return f", git {head.stdout.strip()}" + (" + uncommitted changes in matcalc/" if dirty.stdout.strip() else "")


def lib_version(dist):
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes only, few short samples: a smoke run, not a measurement")
    parser.add_argument("--only", default="abcde",
                        help="workloads to run, e.g. 'a,d' (default: all of a,b,c,d,e)")
    parser.add_argument("--no-compile", action="store_true",
                        help="leave out torch.compile (its compiles take most of a quick run)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    keys = [k for k in "abcde" if k in args.only.lower()]
    if not keys:
        parser.error("--only names none of a, b, c, d, e")

    started = time.perf_counter()
    import matcalc
    peers = Peers(use_compile=not args.no_compile)
    torch_line = "not importable"
    if peers.torch:
        t = peers.torch
        torch_line = (f"{t.__version__} (BLAS/LAPACK: {'MKL' if t.backends.mkl.is_available() else 'other'}),"
                      f" torch.set_num_threads({t.get_num_threads()}) to match NumPy")
    jax_line = "not importable"
    if peers.jax:
        jax_line = (f"{peers.jax.__version__}, jaxlib {lib_version('jaxlib')}, devices {peers.jax.devices()},"
                    f" jax_enable_x64=True, XLA default threading")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [
        "matcalc vs hand-written NumPy vs AD libraries" + (" (--quick: smoke run, numbers are rough)" if args.quick else ""),
        *machine_lines(),
        f"matcalc   {matcalc.__version__}{matcalc_revision()}",
        f"jax       {jax_line}",
        f"torch     {torch_line}",
        f"autograd  {lib_version('autograd')}",
        f"load      1-min load average at start {load[0]:.2f} (includes this process's threads)" if load else "load      unknown",
        f"method    float64; per implementation k calls/sample (each sample >= {cfg['sample_s'] * 1e3:.0f} ms),"
        f" up to {cfg['samples']} samples, rounds interleaved",
        f"          (rotating order), each after ~{cfg['settle_s'] * 1e3:.0f} ms of untimed calls of the same implementation;"
        f" slow ones get fewer samples",
        f"          (>= {cfg['min_samples']}, ~{cfg['budget_s']:g} s each); times exclude array conversion;"
        " jax results block_until_ready;",
        f"          a round during which other processes used > {QUIET_SHARE:.0%} of the CPUs is redone"
        f" (for at most {cfg['wait_s']:.0f} s in all)",
        f"agree     every result checked against the hand-written one before timing:"
        f" np.allclose(rtol={RTOL:g}, atol={RTOL:g}*max|ref|)",
        "",
    ]
    for lib, err in peers.errors.items():
        lines.append(f"note: {lib} not importable: {err}")

    modules = {}
    if "a" in keys:
        modules["a"] = matcalc.compile(MLP_PROBLEM.read_text(encoding="utf-8"))
    if "b" in keys:
        modules["b"] = second_order_module("hessian")
    if "c" in keys:
        modules["c"] = second_order_module("hvp")
    if "d" in keys:
        modules["d"] = matcalc.compile(GAUSS_TEXT)
    if "e" in keys:
        modules["e"] = matcalc.compile(MF_TEXT)

    verdicts = []
    mismatches = []
    whole_run = OtherLoad()
    guard = QuietGuard(max_share=QUIET_SHARE, budget_s=cfg["wait_s"])
    for key in keys:
        mark = guard.mark()
        sizes = SIZES[key][:1] if args.quick else SIZES[key]
        rows = []
        for size in sizes:
            ref, impls = BUILDERS[key](size, peers, modules[key])
            prepare(impls, ref)
            mismatches += [f"({key}) {size} {i.name}: {i.status}" for i in impls
                           if i.status and i.status.startswith("MISMATCH")]
            timed = [i for i in impls if i.status is None]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results = race_many([(i.name, i.fn, i.args, i.kwargs) for i in timed],
                                    cfg["samples"], cfg["sample_s"], cfg["budget_s"],
                                    cfg["min_samples"], cfg["settle_s"], guard)
            for impl in timed:
                impl.k, impl.times = results[impl.name]
            rows.append((size, impls))
        report(key, rows, lines, verdicts)
        redone, other = guard.since(mark)
        if other is not None:
            lines.insert(-1, f"   other processes used {other:.0%} of the CPUs during the kept rounds"
                             f" ({redone} disturbed rounds redone)"
                             + ("  (> 5%: disturbed, run again)" if other > 0.05 else ""))
        print("\n".join(lines), flush=True)
        lines = []

    judged = [ok for _, ok in verdicts if ok is not None]
    failed = [label for label, ok in verdicts if ok is False]
    skipped = [label for label, ok in verdicts if ok is None]
    lines.append("columns   median/min: per-call time; first call: includes jit tracing / torch.compile;"
                 " / hand: this time / hand-written time;")
    lines.append("          gen / this: generated time / this time (< 1: generated is faster)")
    lines.append(f"targets   {sum(judged)}/{len(judged)} judged targets pass"
                 + (f"; {len(skipped)} not judged (matcalc or the peer n/a)" if skipped else ""))
    for label in failed:
        lines.append(f"  FAIL    {label}")
    for m in mismatches:
        lines.append(f"  MISMATCH {m}")
    other = whole_run.share()
    lines.append(f"total     {time.perf_counter() - started:.0f} s"
                 + (f"; other processes used {other:.0%} of the CPUs over the whole run;"
                    f" {guard.redone} disturbed rounds redone ({guard.spent_s:.0f} s of"
                    f" at most {cfg['wait_s']:.0f} s)" if other is not None else ""))
    print("\n".join(lines))
    return 0 if not failed and not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
