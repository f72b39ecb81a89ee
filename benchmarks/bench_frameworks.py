"""The torch and jax targets under torch.compile and jax.jit against the
frameworks' own autodiff of the same function.

    python benchmarks/bench_frameworks.py            # large sizes of (a), (d), (e) (~5 min on 2 cores)
    python benchmarks/bench_frameworks.py --quick    # small sizes, few samples (a smoke run)
    python benchmarks/bench_frameworks.py --only jax # one framework
    python benchmarks/bench_frameworks.py --threads 1   # one thread each, CPU time (steadier when shared)
    python benchmarks/bench_frameworks.py --device cuda # torch on a GPU (JAX: its default device)

Workloads (a), (d), (e) of bench_peers.py, float64, value and gradient:

  jax    peer   jax.jit(jax.value_and_grad(f)), f written in jax.numpy
         ours   jax.jit(jax.value_and_grad(module.f)): the --target jax
                module's custom_vjp, whose backward is matcalc's closed form
         direct jax.jit of module.forward then module.backward (no jax.vjp)
  torch  peer   torch.compile(torch.func.grad_and_value(f)), f in torch
         ours   torch.compile(module.f), then torch.autograd.grad of its
                value: the --target torch module's autograd.Function, its
                backward matcalc's closed form (compiled by AOTAutograd)
         direct torch.compile of module.forward then module.backward
         peer autograd  torch.compile(f), then torch.autograd.grad: PyTorch's
                own training path, which `ours` is judged against

Every result is first checked against the hand-written NumPy one (as in
bench_peers.py); then the implementations of a workload are timed in one
process, samples interleaved (benchmarks/timing.py). The columns are
medians; a ratio is the median of same-round ratios (`timing.paired_ratio`,
as in bench_peers.py), or the quotient of medians where the budget cut one
side's samples. Judged (<= 1.0): jax ours / peer; torch direct / peer (one
compiled value-and-gradient call each) and ours / peer autograd (the
training path each). Exits with 0 when every judged ratio passes, else 1.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_peers as peers  # noqa: E402  (this folder's scripts)
from bench_mlp import PROBLEM as MLP_PROBLEM  # noqa: E402
from bench_mlp import hand_written as mlp_hand  # noqa: E402
from bench_mlp import make_inputs as mlp_inputs  # noqa: E402
import timing  # noqa: E402
from timing import OtherLoad, QuietGuard, machine_lines, paired_ratio, race_many  # noqa: E402

FULL = dict(samples=21, sample_s=0.020, budget_s=3.0, min_samples=5, settle_s=0.05, wait_s=120.0)
QUICK = dict(samples=3, sample_s=0.002, budget_s=0.3, min_samples=3, settle_s=0.0, wait_s=5.0)


# Each workload: the problem, the inputs (in the module's INPUTS order), the
# names differentiated by, the hand-written reference, and f in each framework.

def _mlp(lib):
    relu = lib.relu if hasattr(lib, "relu") else lambda x: lib.maximum(x, 0.0)

    def f(X, T, W1, b1, W2, b2):
        return lib.sum((relu(X @ W1 + b1) @ W2 + b2 - T) ** 2) / X.shape[0]
    return f


def _gauss(lib):
    def f(X, S):
        return X.shape[0] / 2 * lib.linalg.slogdet(S)[1] + lib.trace(lib.linalg.solve(S, X.T @ X)) / 2
    return f


def _mf(lib):
    def f(X, U, V, lam):
        return lib.sum((X - U @ V.T) ** 2) + lam * (lib.sum(U ** 2) + lib.sum(V ** 2))
    return f


WORKLOADS = {
    "a": (lambda: MLP_PROBLEM.read_text(encoding="utf-8"), mlp_inputs, mlp_hand, _mlp),
    "d": (lambda: peers.GAUSS_TEXT, peers.gauss_inputs, peers.gauss_hand, _gauss),
    "e": (lambda: peers.MF_TEXT, peers.mf_inputs, peers.mf_hand, _mf),
}
SYMMETRIC = {"d": "S"}  # the peers' gradient is symmetrised, as matcalc's is
# What is judged, each <= 1.0: JAX's custom_vjp under jax.value_and_grad
# against the peer; for torch, the module's value_and_grad under one
# torch.compile against grad_and_value under one (the same functional call),
# and the training path (the autograd.Function, then torch.autograd.grad)
# against PyTorch's own training path, torch.compile(f) then autograd.grad.
JUDGED = {"jax": ("ours/peer",), "torch": ("direct/peer", "ours/peer autograd")}
DEVICE = ["cpu"]  # the torch tensors' device (--device); JAX uses its default device


def generated(text, target, name):
    """The module `matcalc codegen --target <target>` writes, imported from a
    file (as a user's would be: torch.compile reads a function's module by
    its name)."""
    import importlib
    import tempfile
    import matcalc
    folder = Path(tempfile.mkdtemp(prefix="bench_frameworks_"))
    (folder / f"{name}.py").write_text(matcalc.codegen(text, target=target), encoding="utf-8")
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def _reference(key, size):
    text, make, hand, _ = WORKLOADS[key]
    inputs = make(*size)
    value, grads = hand(**inputs)
    return text(), inputs, peers.canon(value, *grads.values()), list(grads)


def jax_entries(key, size):
    """(name, fn, args) of the jax implementations, and the reference."""
    import jax
    text, inputs, ref, wrt = _reference(key, size)
    module = generated(text, "jax", f"generated_jax_{key}")
    args = tuple(jax.numpy.asarray(inputs[n]) for n in module.INPUTS)
    argnums = tuple(module.INPUTS.index(w) for w in wrt)
    sym = SYMMETRIC.get(key)

    def peer(*xs):
        value, grads = jax.value_and_grad(WORKLOADS[key][3](jax.numpy), argnums=argnums)(*xs)
        return value, tuple((g + g.T) / 2 if sym else g for g in grads)

    def direct(*xs):
        value, cache = module.forward(*xs)
        return value, module.backward(cache)
    return ref, [("peer", jax.jit(peer), args),
                 ("ours", jax.jit(jax.value_and_grad(module.f, argnums=argnums)), args),
                 ("direct", jax.jit(direct), args)]


def torch_entries(key, size):
    """(name, fn, args) of the torch implementations, and the reference."""
    import torch
    text, inputs, ref, wrt = _reference(key, size)
    module = generated(text, "torch", f"generated_torch_{key}")
    leaf = [n in wrt for n in module.INPUTS]
    args = tuple(torch.tensor(inputs[n], device=DEVICE[0]) for n in module.INPUTS)
    leaves = tuple(torch.tensor(inputs[n], device=DEVICE[0], requires_grad=g)
                   for n, g in zip(module.INPUTS, leaf))
    argnums = tuple(i for i, g in enumerate(leaf) if g)
    sym = SYMMETRIC.get(key)
    grad_and_value = torch.func.grad_and_value(WORKLOADS[key][3](torch), argnums=argnums)

    def peer(*xs):
        grads, value = grad_and_value(*xs)
        return value, tuple((g + g.T) / 2 if sym else g for g in grads)

    compiled_f = torch.compile(module.f, dynamic=False)

    def ours(*xs):
        value = compiled_f(*xs)
        return value, torch.autograd.grad(value, [xs[i] for i in argnums])

    def direct(*xs):
        value, cache = module.forward(*xs)
        return value, module.backward(cache)

    compiled_peer_f = torch.compile(WORKLOADS[key][3](torch), dynamic=False)

    def peer_autograd(*xs):
        value = compiled_peer_f(*xs)
        grads = torch.autograd.grad(value, [xs[i] for i in argnums])
        return value, tuple((g + g.T) / 2 if sym else g for g in grads)
    return ref, [("peer", torch.compile(peer, dynamic=False), args),
                 ("ours", ours, leaves),
                 ("direct", torch.compile(direct, dynamic=False), args),
                 ("peer autograd", peer_autograd, leaves)]


def _flat(result):
    value, grads = result
    return peers.canon(value, *grads)


def run(framework, key, size, cfg, guard):
    """{name: (median seconds, first call seconds)} after the agreement check."""
    ref, entries = (jax_entries if framework == "jax" else torch_entries)(key, size)
    if framework == "jax":
        import jax
        entries = [(n, (lambda fn: lambda *a: jax.block_until_ready(fn(*a)))(fn), a)
                   for n, fn, a in entries]
    elif DEVICE[0] != "cpu":  # a GPU: each call waits for its kernels
        import torch
        entries = [(n, (lambda fn: lambda *a: (fn(*a), torch.cuda.synchronize())[0])(fn), a)
                   for n, fn, a in entries]
    first = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.compile's deprecation notices
        for name, fn, args in entries:
            start = time.perf_counter()
            why = peers.disagreement(_flat(fn(*args)), ref)
            first[name] = time.perf_counter() - start
            if why:
                raise SystemExit(f"MISMATCH {framework} ({key}) {size} {name}: {why}")
        results = race_many([(n, fn, a, {}) for n, fn, a in entries], cfg["samples"],
                            cfg["sample_s"], cfg["budget_s"], cfg["min_samples"],
                            cfg["settle_s"], guard)
    return {n: (statistics.median(t), first[n], t) for n, (_, t) in results.items()}


def _ratio(a: tuple, b: tuple) -> float:
    """a's time / b's, each a run() entry (`timing.paired_ratio`)."""
    return paired_ratio(a[2], b[2])[0]


def _setup(frameworks, threads):
    """Import and configure the frameworks: float64; `threads` threads for
    NumPy's BLAS, XLA and torch (None: NumPy's default, one per usable CPU,
    and XLA's). Returns the header lines."""
    lines = []
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
        if threads == 1:
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                       + " --xla_cpu_multi_thread_eigen=false"
                                       " intra_op_parallelism_threads=1")
            if hasattr(os, "sched_setaffinity"):  # XLA's dots still start threads of their own
                os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
            timing.CLOCK = time.process_time
            lines.append("clock     one thread each, the process on one CPU: samples are its"
                         " CPU time (time.process_time), not wall time")
    if "jax" in frameworks:
        import jax
        jax.config.update("jax_enable_x64", True)
        lines.append(f"jax       {jax.__version__}, devices {jax.devices()}, jax_enable_x64=True")
    if "torch" in frameworks:
        import torch
        torch.set_num_threads(threads or peers.numpy_threads())
        lines.append(f"torch     {torch.__version__}, {torch.get_num_threads()} threads,"
                     f" device {DEVICE[0]}, torch.compile(dynamic=False), inductor")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few samples (rough)")
    parser.add_argument("--only", default="jax,torch", help="frameworks: jax, torch or both")
    parser.add_argument("--workloads", default="ade", help="some of a, d, e")
    parser.add_argument("--device", default="cpu", help="torch tensors' device, e.g. cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS, XLA (1 only) and torch (default: the libraries')")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    DEVICE[0] = args.device
    frameworks = [f for f in ("jax", "torch") if f in args.only]
    missing = [f for f in frameworks if importlib.util.find_spec(f) is None]
    frameworks = [f for f in frameworks if f not in missing]
    started, load = time.perf_counter(), OtherLoad()
    guard = QuietGuard(max_share=peers.QUIET_SHARE, budget_s=cfg["wait_s"])
    print("--target jax / torch under jax.jit / torch.compile vs the frameworks' autodiff"
          + (" (--quick: small sizes, numbers are rough)" if args.quick else ""))
    setup = _setup(frameworks, args.threads)  # before NumPy's BLAS starts its threads
    print("\n".join(machine_lines() + setup
                     + [f"{f:<9} not installed: not run" for f in missing]) + "\n")
    print(f"{'framework':<7} {'workload':<20} {'peer':>10} {'ours':>10} {'direct':>10}"
          f" {'peer autograd':>13} {'ours/peer':>9} {'direct/peer':>11} {'ours/peer ag':>12}")
    failed = []
    for framework in frameworks:
        for key in [k for k in "ade" if k in args.workloads]:
            size = peers.SIZES[key][0 if args.quick else 1]
            t = run(framework, key, size, cfg, guard)
            label = f"({key}) {','.join(map(str, size))}"
            ratios = {"ours/peer": _ratio(t["ours"], t["peer"]),
                      "direct/peer": _ratio(t["direct"], t["peer"])}
            if "peer autograd" in t:
                ratios["ours/peer autograd"] = _ratio(t["ours"], t["peer autograd"])
            judged = JUDGED[framework]
            passed = all(ratios[r] <= 1.0 for r in judged)
            if not passed:
                failed.append(f"{framework} {label}")
            cells = [f"{t[n][0] * 1e3:8.3f}ms" if n in t else "n/a"
                     for n in ("peer", "ours", "direct", "peer autograd")]
            print(f"{framework:<7} {label:<20} " + " ".join(
                f"{c:>{w}}" for c, w in zip(cells, (10, 10, 10, 13)))
                + "".join(f" {ratios[r]:>{w}.3f}" if r in ratios else f" {'n/a':>{w}}"
                          for r, w in (("ours/peer", 9), ("direct/peer", 11),
                                       ("ours/peer autograd", 12)))
                + f"  {'PASS' if passed else 'FAIL'}"
                + f" ({', '.join(judged)} <= 1.0; first calls, compiling: "
                + ", ".join(f"{t[n][1]:.1f}" for n in t) + " s)", flush=True)
    print(timing.verdict(failed, started, load, guard, "judged ratios <= 1.0: ", "; "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
