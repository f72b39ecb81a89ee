"""The matrix products of the peer workloads, in NumPy and in PyTorch.

Where torch beats the generated code at a large size, is it the code or the
BLAS? This times the very products the generated code and the hand-written
code perform, `a @ b` in NumPy (its BLAS, OpenBLAS here) against
`ta @ tb` in PyTorch (MKL in the CPU wheel), float64, same threads,
interleaved samples, medians (`timing.race_many`).

    python benchmarks/bench_blas.py            # needs the `bench` extra (torch)
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from timing import blas_name, machine_lines, ms, race_many

def _pair(sa, sb):
    return lambda rng: (rng.standard_normal(sa), rng.standard_normal(sb))


def _gram(n, d):
    def make(rng):
        x = rng.standard_normal((n, d))
        return x.T, x  # X.T @ X: the same buffer, which NumPy computes with syrk
    return make


# (workload, product, inputs a, b of a @ b from a random generator)
PRODUCTS = [
    ("(a) 256,784,512,10", "X @ W1", _pair((256, 784), (784, 512))),
    ("(a) 256,784,512,10", "X.T @ dZ1", _pair((784, 256), (256, 512))),
    ("(a) 256,784,512,10", "dY @ W2.T", _pair((256, 10), (10, 512))),
    ("(d) 2000,200", "X.T @ X", _gram(2000, 200)),
    ("(d) 2000,200", "inv(S) @ C", _pair((200, 200), (200, 200))),
    ("(e) 1000,800,50", "U @ V.T", _pair((1000, 50), (50, 800))),
    ("(e) 1000,800,50", "R @ V", _pair((1000, 800), (800, 50))),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=21)
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: pip install -e '.[bench]'")
        return 1
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(threads)
    print("NumPy's BLAS against PyTorch's on the products of bench_peers.py")
    print("\n".join(machine_lines()))
    print(f"numpy     {np.__version__}, BLAS {blas_name()}")
    print(f"torch     {torch.__version__}, {threads} threads, MKL: {torch.backends.mkl.is_available()}")
    print(f"\n{'workload':<20} {'product':<11} {'numpy':>10} {'torch':>10} {'numpy / torch':>14}")
    rng = np.random.default_rng(0)
    for workload, name, make in PRODUCTS:
        a, b = make(rng)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        got = race_many([("numpy", np.matmul, (a, b), {}), ("torch", torch.matmul, (ta, tb), {})],
                        args.samples, 0.02, settle_s=0.05)
        n, t = (float(np.median(got[key][1])) for key in ("numpy", "torch"))
        print(f"{workload:<20} {name:<11} {ms(n):>10} {ms(t):>10} {n / t:>14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
