"""Benchmark matcalc on the two-layer MLP of examples/mlp.mc.

    python benchmarks/bench_mlp.py            # full run (a few minutes)
    python benchmarks/bench_mlp.py --quick    # smoke run (seconds)

Measures, in one process:

1. the generated `value_and_grad` against a hand-written NumPy
   forward/backward of the same network, for two sizes, float64
   (target: generated / hand-written <= 1.10, ratio of medians);
2. the in-process time of `matcalc.codegen(text)` (parse + derive + emit),
   the first (cold) call reported separately (target: median <= 100 ms);
3. the wall time of the `matcalc grad examples/mlp.mc` command
   (target: median <= 0.5 s).

Prints a plain-text table and exits with 0 when every target passes, 1 when
one fails. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import machine_lines, ms, race  # noqa: E402  (this folder's helpers)

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = ROOT / "examples" / "mlp.mc"

# (N, D, H, O): batch, input width, hidden width, output width.
SIZES = [(32, 100, 200, 10), (256, 784, 512, 10)]

TARGET_RATIO = 1.10
TARGET_CODEGEN_S = 0.100
TARGET_CLI_S = 0.5

FULL = dict(samples=41, sample_s=0.020, codegen_repeats=20, cli_runs=9)
QUICK = dict(samples=5, sample_s=0.005, codegen_repeats=5, cli_runs=3)

def hand_written(X, T, W1, b1, W2, b2):
    """The same network's loss and gradients, as a person would write them."""
    N = X.shape[0]
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    Y = A1 @ W2 + b2
    R = Y - T
    loss = np.sum(R ** 2) / N
    dY = 2 / N * R
    dW2 = A1.T @ dY
    db2 = dY.sum(0)
    dZ1 = (dY @ W2.T) * (Z1 > 0)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(0)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def make_inputs(N, D, H, O, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((N, D)),
        "T": rng.standard_normal((N, O)),
        "W1": rng.standard_normal((D, H)) / np.sqrt(D),
        "b1": rng.standard_normal(H) * 0.1,
        "W2": rng.standard_normal((H, O)) / np.sqrt(H),
        "b2": rng.standard_normal(O) * 0.1,
    }


def agree(module, inputs) -> str | None:
    """None when both implementations agree, else what differs."""
    loss_g, grads_g = module.value_and_grad(**inputs)
    loss_h, grads_h = hand_written(**inputs)
    if not np.allclose(loss_g, loss_h, rtol=1e-10, atol=1e-12):
        return f"loss {loss_g!r} != {loss_h!r}"
    if set(grads_g) != set(grads_h):
        return f"gradient names {sorted(grads_g)} != {sorted(grads_h)}"
    for name, g in grads_g.items():
        h = grads_h[name]
        if np.shape(g) != np.shape(h):
            return f"d{name} shape {np.shape(g)} != {np.shape(h)}"
        if not np.allclose(g, h, rtol=1e-10, atol=1e-12):
            return f"d{name} differs (max abs diff {np.max(np.abs(g - h)):.3g})"
    # The ReLU must be active on some but not all units, or the test is weak.
    Z1 = inputs["X"] @ inputs["W1"] + inputs["b1"]
    if not 0 < np.mean(Z1 > 0) < 1:
        return "degenerate inputs: ReLU all on or all off"
    return None


def time_codegen(text, repeats):
    import matcalc
    clock = time.perf_counter
    start = clock()
    first = matcalc.codegen(text)
    cold = clock() - start
    warm = []
    for _ in range(repeats):
        start = clock()
        source = matcalc.codegen(text)
        warm.append(clock() - start)
        if source != first:
            raise SystemExit("codegen is not deterministic across calls")
    return cold, warm


def cli_command():
    script = Path(sys.executable).parent / "matcalc"
    if not script.exists():
        raise SystemExit(f"no matcalc script next to {sys.executable}; "
                         "install the package (pip install -e .)")
    return [str(script), "grad", str(PROBLEM)]


def time_cli(runs):
    cmd = cli_command()
    times = []
    for _ in range(runs + 1):  # the first run (cold file cache) is discarded
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return times[0], times[1:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="few short samples: a smoke run, not a measurement")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL

    import_start = time.perf_counter()
    import matcalc
    import_s = time.perf_counter() - import_start
    text = PROBLEM.read_text(encoding="utf-8")

    lines = [
        "matcalc MLP benchmark" + (" (--quick: smoke run, numbers are rough)" if args.quick else ""),
        *machine_lines(),
        f"matcalc   {matcalc.__version__}, {PROBLEM.relative_to(ROOT)}",
        f"method    {cfg['samples']} samples per side, each >= {cfg['sample_s'] * 1e3:.0f} ms "
        "of back-to-back calls, generated/hand-written interleaved (ABBA)",
        "",
    ]
    results = []  # (label, passed)

    # Code generation first, so the cold call is really the first one.
    cold, warm = time_codegen(text, cfg["codegen_repeats"])
    module = matcalc.compile(matcalc.parse(text))

    rows = []
    for size in SIZES:
        inputs = make_inputs(*size)
        problem = agree(module, inputs)
        if problem:
            print("\n".join(lines))
            print(f"MISMATCH at (N,D,H,O)={size}: {problem}")
            return 1
        k, gen, hand = race(module.value_and_grad, hand_written, inputs,
                            cfg["samples"], cfg["sample_s"])
        g, h = statistics.median(gen), statistics.median(hand)
        paired = statistics.median(a / b for a, b in zip(gen, hand))
        rows.append((size, k, g, h, min(gen), min(hand), g / h, paired))

    lines.append("1. value_and_grad, float64 (generated vs hand-written NumPy; both agree: np.allclose)")
    header = (f"   {'N,D,H,O':<17} {'calls/sample':>12} {'generated':>12} {'hand':>12}"
              f" {'gen min':>12} {'hand min':>12} {'ratio':>7} {'paired':>7}  target")
    lines.append(header)
    for size, k, g, h, gmin, hmin, ratio, paired in rows:
        ok = ratio <= TARGET_RATIO
        results.append(ok)
        lines.append(f"   {','.join(map(str, size)):<17} {k:>12} {ms(g):>12} {ms(h):>12}"
                     f" {ms(gmin):>12} {ms(hmin):>12} {ratio:>7.3f} {paired:>7.3f}"
                     f"  <= {TARGET_RATIO:.2f} {'PASS' if ok else 'FAIL'}")
    lines.append("   (generated/hand: medians of per-call time; ratio = median gen / median hand;"
                 " paired = median of per-round ratios)")
    lines.append("")

    ok = statistics.median(warm) <= TARGET_CODEGEN_S
    results.append(ok)
    lines.append("2. matcalc.codegen(text): parse + derive + emit, in process")
    lines.append(f"   import matcalc        {ms(import_s):>12}")
    lines.append(f"   first (cold) call     {ms(cold):>12}  (not judged)")
    lines.append(f"   median of {len(warm):<3}        {ms(statistics.median(warm)):>12}"
                 f"  (min {ms(min(warm))}, max {ms(max(warm))})"
                 f"  <= {TARGET_CODEGEN_S * 1e3:.0f} ms {'PASS' if ok else 'FAIL'}")
    lines.append("")

    first_cli, cli = time_cli(cfg["cli_runs"])
    ok = statistics.median(cli) <= TARGET_CLI_S
    results.append(ok)
    lines.append("3. `matcalc grad examples/mlp.mc` wall time (subprocess)")
    lines.append(f"   first run             {first_cli * 1e3:9.1f} ms  (discarded)")
    lines.append(f"   median of {len(cli):<3}        {statistics.median(cli) * 1e3:9.1f} ms"
                 f"  (min {min(cli) * 1e3:.1f}, max {max(cli) * 1e3:.1f})"
                 f"  <= {TARGET_CLI_S * 1e3:.0f} ms {'PASS' if ok else 'FAIL'}")
    lines.append("")
    passed = sum(results)
    lines.append(f"overall   {passed}/{len(results)} targets pass: "
                 f"{'PASS' if passed == len(results) else 'FAIL'}")
    print("\n".join(lines))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
