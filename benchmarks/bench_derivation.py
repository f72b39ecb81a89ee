"""Derivation cost: parse + derive + emit an L-layer MLP, for L = 10, 50, 100.

Targets: L = 100 in at most 1 s, time(100) / time(10) at most 15 (linear
growth), and generated code that grows linearly too. Run:

    python benchmarks/bench_derivation.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

import matcalc


def mlp(layers: int) -> str:
    """An L-layer ReLU regression network with named layers, as a problem."""
    lines = ["X: N x D", "T: N x O"]
    lines += [f"W{i}: D x D\nb{i}: D" for i in range(1, layers)]
    lines += [f"W{layers}: D x O", f"b{layers}: O"]
    previous = "X"
    for i in range(1, layers):
        lines += [f"Z{i} = {previous} @ W{i} + b{i}", f"A{i} = relu(Z{i})"]
        previous = f"A{i}"
    lines.append(f"Y = {previous} @ W{layers} + b{layers}")
    lines.append("loss = sum((Y - T) ** 2) / N")
    lines.append("wrt " + ", ".join(f"W{i}, b{i}" for i in range(1, layers + 1)))
    return "\n".join(lines)


def median_time(text: str, repeats: int) -> tuple[float, int]:
    """Median seconds of matcalc.codegen(text), and the source's line count."""
    times, source = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        source = matcalc.codegen(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times), source.count("\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    print("matcalc derivation-cost benchmark")
    print(f"date      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"machine   {platform.platform()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    matcalc.codegen(mlp(2))  # warm up the parser and caches
    rows = {layers: median_time(mlp(layers), repeats) for layers in (10, 50, 100)}
    print(f"\n{'L':>5} {'parse+derive+emit':>18} {'lines of code':>14}")
    for layers, (seconds, lines) in rows.items():
        print(f"{layers:>5} {seconds * 1000:>15.1f} ms {lines:>14}")
    ratio = rows[100][0] / rows[10][0]
    lines_ratio = rows[100][1] / rows[10][1]
    ok_time, ok_ratio = rows[100][0] <= 1.0, ratio <= 15
    print(f"\nL = 100: {rows[100][0]:.3f} s (target <= 1 s) {'PASS' if ok_time else 'FAIL'}")
    print(f"time(100) / time(10) = {ratio:.1f} (target <= 15) {'PASS' if ok_ratio else 'FAIL'}")
    print(f"code size(100) / size(10) = {lines_ratio:.1f} (linear: about 10)")
    return 0 if ok_time and ok_ratio else 1


if __name__ == "__main__":
    raise SystemExit(main())
