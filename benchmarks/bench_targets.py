"""The array-API target on NumPy arrays against the NumPy target.

    python benchmarks/bench_targets.py            # full run (~1 min on 2 idle cores)
    python benchmarks/bench_targets.py --quick    # smoke run: small sizes, few samples
    python benchmarks/bench_targets.py --only a,e # some workloads
    python benchmarks/bench_targets.py --threads 1  # one BLAS thread, CPU time (steadier when shared)

The workloads and sizes of bench_peers.py, (a)-(e): the module generated with
`--target array-api`, called with NumPy arrays, against the module generated
with `--target numpy` (the default) and the hand-written NumPy code, the same
inputs, in one process. Both modules are first checked to agree with the
hand-written result (as in bench_peers.py), then timed with samples
interleaved (benchmarks/timing.py); xp/np is the median of the two targets'
same-round ratios (`timing.paired_ratio`), np/hand a quotient of medians.
Target: array-api / numpy <= 1.10 at every workload and size. Exits with 0
when every one passes, else 1. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# --threads must reach OpenBLAS before NumPy loads it.
if "--threads" in sys.argv[:-1]:
    os.environ["OPENBLAS_NUM_THREADS"] = sys.argv[sys.argv.index("--threads") + 1]

import array_api_compat  # noqa: E402  (the array-API modules' dependency)
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_peers as peers  # noqa: E402  (this folder's scripts)
from bench_mlp import PROBLEM as MLP_PROBLEM  # noqa: E402
from bench_mlp import hand_written as mlp_hand  # noqa: E402
from bench_mlp import make_inputs as mlp_inputs  # noqa: E402
import timing  # noqa: E402
from timing import OtherLoad, QuietGuard, machine_lines, paired_ratio, race_many  # noqa: E402

TARGET = 1.10  # array-api / numpy, time

FULL = dict(samples=31, sample_s=0.020, budget_s=3.0, min_samples=5, settle_s=0.05, wait_s=120.0)
QUICK = dict(samples=5, sample_s=0.005, budget_s=0.5, min_samples=3, settle_s=0.01, wait_s=10.0)


def _flat(names):
    """A value-and-gradient result as a tuple of NumPy arrays."""
    return lambda r: peers.canon(r[0], *(r[1][n] for n in names))


def workload(key, size):
    """(the problem's text, compile keywords, the function's attribute, its
    positional arguments, inputs, the hand-written function, how a result
    reads as arrays) of workload `key` at `size`."""
    if key == "a":
        inputs = mlp_inputs(*size)
        return (MLP_PROBLEM.read_text(encoding="utf-8"), {}, "value_and_grad", (),
                inputs, mlp_hand, _flat(("W1", "b1", "W2", "b2")))
    if key in "bc":
        inputs = peers.logistic_inputs(*size)
        if key == "b":
            return (peers.LOGISTIC_TEXT, {"hessian": ["w"]}, "hessian", (), inputs,
                    peers.logistic_hessian_hand, peers.canon)
        v = np.random.default_rng(1).standard_normal(size[1])
        return (peers.LOGISTIC_TEXT, {"hvp": True}, "hvp", (v,), inputs,
                peers.logistic_hvp_hand, peers.canon)
    if key == "d":
        return (peers.GAUSS_TEXT, {}, "value_and_grad", (), peers.gauss_inputs(*size),
                peers.gauss_hand, _flat(("S",)))
    return (peers.MF_TEXT, {}, "value_and_grad", (), peers.mf_inputs(*size),
            peers.mf_hand, _flat(("U", "V")))


def measure(key, size, cfg, guard):
    """({'numpy', 'array-api', 'hand': median seconds}, array-api / numpy as
    the median of same-round ratios, or of medians where the budget cut one
    side's samples) of workload `key` at `size`, after checking that both
    targets agree with the hand-written code."""
    import matcalc
    text, options, attr, args, inputs, hand, flat = workload(key, size)
    entries = [("hand", hand, args, inputs)]
    ref = flat(hand(*args, **inputs))
    for target in ("numpy", "array-api"):
        fn = getattr(matcalc.compile(text, target=target, **options), attr)
        why = peers.disagreement(flat(fn(*args, **inputs)), ref)
        if why:
            raise SystemExit(f"MISMATCH ({key}) {size} {target}: {why}")
        entries.append((target, fn, args, inputs))
    results = race_many(entries, cfg["samples"], cfg["sample_s"], cfg["budget_s"],
                        cfg["min_samples"], cfg["settle_s"], guard)
    medians = {name: float(np.median(times)) for name, (_, times) in results.items()}
    return medians, paired_ratio(results["array-api"][1], results["numpy"][1])[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few samples (rough)")
    parser.add_argument("--only", default="abcde", help="workloads to run, e.g. 'a,e'")
    parser.add_argument("--threads", type=int, default=None,
                        help="OpenBLAS threads; 1: samples are the process's CPU time")
    args = parser.parse_args(argv)
    if args.threads == 1:
        timing.CLOCK = time.process_time
    cfg = QUICK if args.quick else FULL
    keys = [k for k in "abcde" if k in args.only.lower()]
    started, load = time.perf_counter(), OtherLoad()
    guard = QuietGuard(max_share=peers.QUIET_SHARE, budget_s=cfg["wait_s"])
    print("--target array-api vs --target numpy, on NumPy arrays"
          + (" (--quick: smoke run, numbers are rough)" if args.quick else ""))
    print("\n".join(machine_lines()))
    print(f"libs      array-api-compat {array_api_compat.__version__}")
    print("clock     " + ("CPU time of the process (time.process_time)" if args.threads == 1
                         else "wall time") + "\n")
    print(f"{'workload':<24} {'numpy':>10} {'array-api':>10} {'hand':>10}"
          f" {'xp/np':>7} {'np/hand':>8}  target xp/np <= {TARGET}")
    failed = []
    for key in keys:
        for size in peers.SIZES[key][:1] if args.quick else peers.SIZES[key]:
            t, ratio = measure(key, size, cfg, guard)
            label = f"({key}) {','.join(map(str, size))}"
            if ratio > TARGET:
                failed.append(label)
            print(f"{label:<24} {t['numpy'] * 1e6:8.1f}us {t['array-api'] * 1e6:8.1f}us"
                  f" {t['hand'] * 1e6:8.1f}us {ratio:7.3f} {t['numpy'] / t['hand']:8.3f}"
                  f"  {'PASS' if ratio <= TARGET else 'FAIL'}", flush=True)
    print(timing.verdict(failed, started, load, guard))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
