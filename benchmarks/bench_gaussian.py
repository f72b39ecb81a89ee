"""Benchmark the Gaussian log-likelihood, written the natural way, against
hand-written NumPy: time and peak memory.

    python benchmarks/bench_gaussian.py            # full run (~1 min)
    python benchmarks/bench_gaussian.py --quick    # smoke run (seconds)

The problem (R: N x D residuals, Sigma: D x D spd covariance),

    f = N/2 * logdet(Sigma) + 1/2 * trace(R @ inv(Sigma) @ R.T),

with the value and the gradients by R and Sigma. The trace is of an N x N
matrix that nobody forms: hand-written code computes RS = R Σ⁻¹ (N x D),
f = N/2 logdet Σ + 1/2 Σ_ij RS_ij R_ij, ∂f/∂R = RS and
∂f/∂Σ = (N Σ⁻¹ − RSᵀ RS) / 2. The generated `value_and_grad` must stay
within TARGET (1.05x) of it in time and in peak memory, at N = 15,000,
D = 10 (where matcalc's code once built `np.eye(N) / 2`: 8.2 s and 1.8 GB
against 20 ms).

Time: medians of per-call times, samples interleaved (see `race_many` in
benchmarks/timing.py; a round disturbed by other processes is redone while
the waiting budget lasts). Memory: the peak that `tracemalloc` sees during one
call (NumPy reports its array buffers to it), the median of interleaved
repeats. Both ratios are taken in the same process. Exits with 0 when every
target passes, 1 otherwise. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import QuietGuard, machine_lines, ms, race_many  # noqa: E402  (this folder's helpers)

TEXT = """\
R: N x D
Sigma: D x D spd
f = N/2*logdet(Sigma) + 1/2*trace(R @ inv(Sigma) @ R.T)
wrt R, Sigma
"""

SIZES = [(15000, 10), (2000, 50)]   # N, D
TARGET = 1.05                       # generated / hand-written, time and peak memory

FULL = dict(samples=31, sample_s=0.05, memory_repeats=9, wait_s=120.0)
QUICK = dict(samples=5, sample_s=0.005, memory_repeats=3, wait_s=5.0)
QUIET_SHARE = 0.10  # a round during which other processes use more of the CPUs is redone


def make_inputs(N, D, seed=0):
    """Residuals and a well-conditioned spd covariance."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((D, D))
    return {"R": rng.standard_normal((N, D)), "Sigma": B @ B.T / D + np.eye(D)}


def hand_written(R, Sigma):
    """f, {R: ∂f/∂R, Sigma: ∂f/∂Σ}, as a person writes them."""
    N = R.shape[0]
    Si = np.linalg.inv(Sigma)
    RS = R @ Si
    f = N / 2 * np.linalg.slogdet(Sigma)[1] + np.einsum("ij,ij", RS, R) / 2
    return f, {"R": RS, "Sigma": (N * Si - RS.T @ RS) / 2}


def agree(module, inputs) -> str | None:
    """Why the two disagree, or None."""
    value, grads = module.value_and_grad(**inputs)
    want, hand = hand_written(**inputs)
    if not np.isclose(value, want, rtol=1e-9):
        return f"value {value} != {want}"
    for name, g in hand.items():
        if not np.allclose(grads[name], g, rtol=1e-8, atol=1e-8 * np.abs(g).max()):
            return f"gradient by {name} differs"
    return None


def peak_bytes(fn, inputs) -> int:
    """The peak of traced allocations during one call of fn(**inputs)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    result = fn(**inputs)
    peak = tracemalloc.get_traced_memory()[1] - before
    del result
    tracemalloc.stop()
    return peak


def memory_race(gen, hand, inputs, repeats):
    """Peak bytes of each side, repeats interleaved (ABBA)."""
    out = {"gen": [], "hand": []}
    order = [("gen", gen), ("hand", hand)]
    for i in range(repeats):
        for key, fn in (order if i % 2 == 0 else order[::-1]):
            out[key].append(peak_bytes(fn, inputs))
    return out["gen"], out["hand"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, rough numbers")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL

    import matcalc
    module = matcalc.compile(TEXT)
    lines = ["matcalc Gaussian log-likelihood benchmark"
             + (" (--quick: smoke run, numbers are rough)" if args.quick else ""),
             *machine_lines(), f"matcalc   {matcalc.__version__}",
             "problem   " + TEXT.splitlines()[2], ""]
    header = (f"   {'N,D':<10} {'generated':>10} {'hand':>10} {'ratio':>6}"
              f" {'gen peak':>10} {'hand peak':>10} {'ratio':>6}  target")
    lines += ["value_and_grad, float64: time (median) and peak memory (tracemalloc, median)",
              header]
    results = []
    guard = QuietGuard(max_share=QUIET_SHARE, budget_s=cfg["wait_s"])
    for size in SIZES:
        inputs = make_inputs(*size)
        why = agree(module, inputs)
        if why:
            print("\n".join(lines) + f"\nMISMATCH at N,D={size}: {why}")
            return 1
        gen_mem, hand_mem = memory_race(module.value_and_grad, hand_written, inputs,
                                        cfg["memory_repeats"])
        times = race_many([("gen", module.value_and_grad, (), inputs),
                           ("hand", hand_written, (), inputs)],
                          cfg["samples"], cfg["sample_s"], settle_s=0.01, guard=guard)
        gen, hand = times["gen"][1], times["hand"][1]
        g, h = statistics.median(gen), statistics.median(hand)
        gm, hm = statistics.median(gen_mem), statistics.median(hand_mem)
        ok = g / h <= TARGET and gm / hm <= TARGET
        results.append(ok)
        lines.append(f"   {','.join(map(str, size)):<10} {ms(g):>10} {ms(h):>10} {g / h:>6.3f}"
                     f" {gm / 2 ** 20:>8.2f}MB {hm / 2 ** 20:>8.2f}MB {gm / hm:>6.3f}"
                     f"  <= {TARGET:.2f} {'PASS' if ok else 'FAIL'}")
    redone, share = guard.since((0, 0.0, 0.0))
    lines.append(f"   (rounds redone for other load: {redone}; other processes' CPU share"
                 f" in kept rounds: {'n/a' if share is None else f'{share:.0%}'})")
    passed = sum(results)
    lines += ["", f"overall   {passed}/{len(results)} sizes pass: "
              f"{'PASS' if passed == len(results) else 'FAIL'}"]
    print("\n".join(lines))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
