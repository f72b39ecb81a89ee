"""Timing helpers shared by the benchmark scripts in this folder.

timeit-style samples: after a warm-up, `k` is doubled until `k` back-to-back
calls take at least `sample_s`; a sample is the time of `k` calls divided by
`k`. Samples of the implementations being compared are interleaved, so drift
in clock speed or load hits all of them alike.

    race(gen, hand, kwargs, samples, sample_s)      # two sides, ABBA order
    race_many(entries, samples, sample_s, ...)      # n sides, rotating order
    paired_ratio(a_times, b_times)                  # median of same-round ratios, paired

Also the bits of the report header both scripts print (`blas_name`, `ms`,
`machine_lines`).
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import time

import numpy as np

BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")

_EMPTY: dict = {}


# The clock samples are read from: wall time; a script may set CPU time
# (time.process_time, all the process's threads), steadier on a shared
# machine for single-threaded code.
CLOCK = time.perf_counter


def time_k(fn, kwargs, k, args=()) -> float:
    """Seconds taken by `k` back-to-back calls `fn(*args, **kwargs)`, by CLOCK."""
    clock = CLOCK
    start = clock()
    for _ in range(k):
        fn(*args, **kwargs)
    return clock() - start


def calls_per_sample(fns, kwargs, sample_s, args=()) -> int:
    """Smallest power of two k with k calls of the slowest fn >= sample_s."""
    k = 1
    while True:
        if max(time_k(fn, kwargs, k, args) for fn in fns) >= sample_s:
            return k
        k *= 2


def race(gen, hand, kwargs, samples, sample_s):
    """Per-call seconds of each side, samples interleaved to cancel drift.

    Returns (k, generated times, hand-written times); both sides make `k`
    calls per sample, chosen for the slower one.
    """
    for fn in (gen, hand):  # warm up caches, allocator, BLAS threads
        time_k(fn, kwargs, 3)
    k = calls_per_sample((gen, hand), kwargs, sample_s)
    times = {"gen": [], "hand": []}
    order = [("gen", gen), ("hand", hand)]
    for i in range(samples):
        # ABBA: swap which side goes first each round.
        for key, fn in (order if i % 2 == 0 else order[::-1]):
            times[key].append(time_k(fn, kwargs, k) / k)
    return k, times["gen"], times["hand"]


def race_many(entries, samples, sample_s, budget_s=None, min_samples=5, settle_s=0.0,
              guard=None):
    """Per-call seconds of n implementations, samples interleaved.

    `entries` is a list of (key, fn, args, kwargs). Each one gets its own
    `k` (calls per sample, so that a sample takes >= `sample_s`), after a
    warm-up of 3 calls (at most ~1 s). Every round runs one sample of each
    entry, starting at a different entry each round and reversing the order
    every other round. An entry whose sample takes longer than
    `budget_s / samples` gets fewer samples (not fewer than `min_samples`),
    spread evenly over the rounds.

    Before each timed sample the entry runs untimed for about `settle_s`
    (at least one call when settle_s > 0): thread pools of the previous
    entry's library (OpenBLAS, OpenMP, XLA) spin for a while after their
    last job, and on a machine with few cores they would otherwise steal
    the next entry's time.

    With a `QuietGuard`, a round during which other processes used more than
    the guard's share of the CPUs is thrown away and run again after a
    pause, while the guard's waiting budget lasts.

    Returns {key: (k, [per-call seconds, ...])}.
    """
    plan = []
    for key, fn, args, kwargs in entries:
        start = time.perf_counter()
        fn(*args, **kwargs)  # the first call may compile or allocate
        first = time.perf_counter() - start
        if first < 0.3:
            time_k(fn, kwargs, 2, args)
        k = calls_per_sample((fn,), kwargs, sample_s, args)
        one = time_k(fn, kwargs, k, args)
        n = samples
        if budget_s is not None and one * samples > budget_s:
            n = max(min_samples, min(samples, int(budget_s / one)))
        settle = 0 if settle_s <= 0 else max(1, math.ceil(settle_s / (one / k)))
        plan.append((key, fn, args, kwargs, k, n, settle))

    times = {key: [] for key, *_ in plan}
    count = len(plan)
    r = 0
    while r < samples:
        order = plan[r % count:] + plan[:r % count]
        if r % 2:
            order = order[::-1]
        if guard is not None:
            guard.round_start()
        taken = []
        for key, fn, args, kwargs, k, n, settle in order:
            # entry with n of `samples` samples: take one when the evenly
            # spaced count steps up in this round.
            if (r + 1) * n // samples > r * n // samples:
                if settle:
                    time_k(fn, kwargs, settle, args)
                taken.append((key, time_k(fn, kwargs, k, args) / k))
        if guard is not None and not guard.round_ok():
            continue  # disturbed: the same round again
        for key, seconds in taken:
            times[key].append(seconds)
        r += 1
    return {key: (k, times[key]) for key, _, _, _, k, _, _ in plan}


def paired_ratio(a: list, b: list) -> tuple[float, bool]:
    """(a's time / b's, whether paired): the median over rounds of a's
    sample / b's sample in the same round, where the lists pair.

    `race_many` gives an entry that is not cut by the budget one sample a
    round, in round order, so two such lists of equal length pair up round
    by round. A slow spell of the machine that spans a round hits both
    samples of a pair, and cancels in their ratio; in the ratio of the two
    medians it does not, when it hits one side's samples more often than
    the other's. Lists of unequal length (a side the budget cut) do not
    pair: the quotient of their medians, and False.
    """
    if len(a) == len(b) and a:
        return float(np.median(np.asarray(a) / np.asarray(b))), True
    return float(np.median(a) / np.median(b)), False


def blas_name() -> str:
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # older NumPy or unusual build
        return "unknown"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def machine_lines() -> list[str]:
    """Header lines: date, platform, CPUs, Python, NumPy/BLAS, thread env."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    env = ", ".join(f"{v}={os.environ[v]}" for v in BLAS_ENV if v in os.environ) or "none set"
    return [
        f"date      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"platform  {platform.platform()} ({platform.machine()})",
        f"cpu       os.cpu_count()={os.cpu_count()}, usable={affinity}",
        f"python    {platform.python_implementation()} {platform.python_version()}",
        f"numpy     {np.__version__}, BLAS {blas_name()}",
        f"threads   BLAS thread env: {env} (BLAS default: one thread per usable CPU)",
    ]


class OtherLoad:
    """Share of the machine's CPU time used by other processes between
    `start()` and `share()` (Linux /proc/stat minus this process's own CPU
    time); None where /proc/stat is missing."""

    def __init__(self):
        self.start()

    @staticmethod
    def _snapshot():
        try:
            with open("/proc/stat", encoding="ascii") as fh:
                fields = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal ...
        busy = sum(fields[:3]) + sum(fields[5:8])
        own = os.times()
        return (time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), own.user + own.system)

    def start(self):
        self._start = self._snapshot()

    def share(self):
        end = self._snapshot()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        other = (end[1] - self._start[1]) - (end[2] - self._start[2])
        cpus = os.cpu_count() or 1
        return max(0.0, other / (wall * cpus)) if wall > 0 else None


def verdict(failed: list, started: float, load: OtherLoad, guard, criterion: str = "",
            sep: str = ", ") -> str:
    """A run's closing line: the `criterion`'s verdict (the failed cases
    joined by `sep`), the run's seconds since `started` (perf_counter), the
    CPU share other processes used and the rounds `guard` redid."""
    other = load.share()
    return (f"\nverdict   {criterion}{'all pass' if not failed else 'FAIL: ' + sep.join(failed)}"
            f"; {time.perf_counter() - started:.0f} s"
            + (f"; other processes used {other:.0%} of the CPUs" if other is not None else "")
            + f"; {guard.redone} disturbed rounds redone")


class QuietGuard:
    """Throws away timing rounds disturbed by other processes.

    A round during which other processes used more than `max_share` of the
    CPUs (see `OtherLoad`) is discarded; the guard sleeps `pause_s` and the
    round is run again. The pauses and discarded rounds are charged to
    `budget_s`, shared by every race that uses the guard; once it is spent,
    rounds are kept whatever the load (the report then flags the table).
    """

    def __init__(self, max_share=0.10, budget_s=120.0, pause_s=1.0):
        self.max_share, self.budget_s, self.pause_s = max_share, budget_s, pause_s
        self.spent_s = 0.0
        self.redone = 0
        self._load = OtherLoad()
        self._round_t0 = time.perf_counter()
        self.kept_other_s = 0.0   # other processes' CPU share x wall time, kept rounds
        self.kept_wall_s = 0.0

    def round_start(self):
        self._load.start()
        self._round_t0 = time.perf_counter()

    def round_ok(self) -> bool:
        share = self._load.share()
        wall = time.perf_counter() - self._round_t0
        if share is None:
            return True
        if share > self.max_share and self.spent_s < self.budget_s:
            self.redone += 1
            time.sleep(self.pause_s)
            self.spent_s += wall + self.pause_s
            return False
        self.kept_other_s += share * wall
        self.kept_wall_s += wall
        return True

    def mark(self):
        """Counters now, to report the rounds between two marks."""
        return (self.redone, self.kept_other_s, self.kept_wall_s)

    def since(self, mark):
        """(rounds redone, other processes' CPU share in kept rounds) since `mark`."""
        redone, other, wall = self.redone - mark[0], self.kept_other_s - mark[1], self.kept_wall_s - mark[2]
        return redone, (other / wall if wall > 0 else None)
