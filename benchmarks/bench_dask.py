"""Benchmark the Dask recipe: the logistic-regression gradient and HVP of
`--target array-api` over data larger than memory, in bounded memory.

    python benchmarks/bench_dask.py            # full run (N = 2·10⁷ x 50: minutes)
    python benchmarks/bench_dask.py --quick    # smoke run (seconds)

The problem is examples/logistic.mc, f(w) = Σ softplus(−y ⊙ Xw), with
∇f = −Xᵀ(y ⊙ σ(−y ⊙ Xw)) and H v = Xᵀ(σ′ ⊙ Xv). X (N x D, float64: 8 GB at
the full size) and y = sign(...) are drawn chunk by chunk by
`dask.array.random` and never held whole; the gradient (with the value) and
the HVP are each one `dask.compute` on the threaded scheduler, so each pass
draws X again: the streamed figures include drawing the data, and the time
of drawing it alone is reported beside them.

Against: the NumPy target (`matcalc.compile(..., hvp=True)`) on data that
fits in memory (--in-memory rows), and the array-API module on the same data
as Dask chunks (Dask's cost without the drawing), the best of --repeats
calls each. Rows per second are N / seconds on each side.

Memory: the process's peak resident set (VmHWM from /proc/self/status,
else ru_maxrss), read after the streamed passes and before the in-memory
data exist; it must stay under --limit-gb (2 GB). Exits with 0 when it
does, 1 otherwise. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import array_api_compat
import dask
import dask.array as da
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import machine_lines  # noqa: E402  (this folder's helpers)

ROOT = Path(__file__).resolve().parent.parent
TEXT = (ROOT / "examples" / "logistic.mc").read_text(encoding="utf-8")


def peak_rss_bytes() -> int:
    """The process's peak resident set so far, in bytes."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def streamed(module, rows: int, cols: int, chunk: int, workers: int) -> dict:
    """Seconds of the gradient (with the value), of the HVP and of drawing
    X and y alone, each one dask.compute over freshly drawn chunks."""
    rng = da.random.default_rng(0)
    X = rng.standard_normal((rows, cols), chunks=(chunk, cols))
    y = da.sign(rng.standard_normal(rows, chunks=chunk))
    params = np.random.default_rng(1)
    w, v = params.standard_normal(cols) / np.sqrt(cols), params.standard_normal(cols)
    seconds = {}
    graphs = {"draw": lambda: (X.sum(), y.sum()),
              "gradient": lambda: module.value_and_grad(X=X, y=y, w=w),
              "hvp": lambda: (module.hvp(v, X=X, y=y, w=w),)}
    for name, build in graphs.items():
        graph = build()  # lazy: nothing is computed here
        start = time.perf_counter()
        dask.compute(*graph, scheduler="threads", num_workers=workers)
        seconds[name] = time.perf_counter() - start
    return seconds


def in_memory(reference, portable, rows: int, cols: int, chunk: int,
              repeats: int) -> dict:
    """Best seconds of the NumPy target's gradient and HVP on rows x cols
    NumPy arrays, and of the array-API module's on the same arrays as Dask
    chunks (`da.from_array`: Dask's own cost, nothing drawn)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, cols))
    y = np.sign(rng.standard_normal(rows))
    w, v = rng.standard_normal(cols) / np.sqrt(cols), rng.standard_normal(cols)
    Xd, yd = da.from_array(X, chunks=(chunk, cols)), da.from_array(y, chunks=chunk)
    calls = {
        ("numpy", "gradient"): lambda: reference.value_and_grad(X=X, y=y, w=w),
        ("numpy", "hvp"): lambda: reference.hvp(v, X=X, y=y, w=w),
        ("dask", "gradient"): lambda: dask.compute(
            *portable.value_and_grad(X=Xd, y=yd, w=w), scheduler="threads"),
        ("dask", "hvp"): lambda: dask.compute(
            portable.hvp(v, X=Xd, y=yd, w=w), scheduler="threads")}
    seconds = {}
    for name, call in calls.items():
        call()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        seconds[name] = min(times)
    return seconds


def versions() -> str:
    return f"dask {dask.__version__}, array-api-compat {array_api_compat.__version__}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds")
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--chunk", type=int, default=200_000, help="rows per Dask chunk")
    parser.add_argument("--in-memory", type=int, default=2_000_000, help="NumPy rows")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="Dask threads")
    parser.add_argument("--limit-gb", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.chunk, args.in_memory, args.repeats = 200_000, 25_000, 100_000, 2
    import matcalc

    portable = matcalc.compile(TEXT, target="array-api", hvp=True)
    reference = matcalc.compile(TEXT, hvp=True)
    for line in machine_lines() + [f"libs      {versions()}"]:
        print(line)
    gb = args.rows * args.cols * 8 / 1e9
    print(f"streamed  N = {args.rows:,} x {args.cols} ({gb:.1f} GB float64), "
          f"chunks of {args.chunk:,} rows, threaded scheduler")
    dask_s = streamed(portable, args.rows, args.cols, args.chunk, args.workers)
    peak = peak_rss_bytes()
    memory_s = in_memory(reference, portable, args.in_memory, args.cols, args.chunk,
                         args.repeats)
    print(f"peak RSS  {peak / 2**30:.2f} GiB during the streamed passes "
          f"(limit {args.limit_gb} GB)")
    print(f"draw X,y  {args.rows / dask_s['draw']:,.0f} rows/s ({dask_s['draw']:.1f} s)")
    for name in ("gradient", "hvp"):
        fast = args.rows / dask_s[name]
        numpy_rate, dask_rate = (args.in_memory / memory_s[side, name]
                                 for side in ("numpy", "dask"))
        print(f"{name:9} streamed {fast:,.0f} rows/s ({dask_s[name]:.1f} s, drawing "
              f"included); in memory, N = {args.in_memory:,}: NumPy target "
              f"{numpy_rate:,.0f} rows/s ({memory_s['numpy', name] * 1e3:.0f} ms), "
              f"Dask chunks {dask_rate:,.0f} rows/s; streamed / NumPy "
              f"{fast / numpy_rate:.2f}")
    return 0 if peak < args.limit_gb * 1e9 else 1


if __name__ == "__main__":
    sys.exit(main())
