"""The Dask recipe (README, "Beyond one machine's memory: Dask"): X as a
chunked Dask array (drawn by `dask.array.random`, or read from a zarr store
on disk), the `--target array-api` logistic-regression gradient, its HVP and
the MLP gradient built as one lazy graph with nothing computed, then
`dask.compute(...)` on the local threaded scheduler and on a
`dask.distributed` LocalCluster, each equal to the NumPy target on the same
data; and benchmarks/bench_dask.py --quick. Skipped by name where dask,
distributed or zarr is missing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
pytest.importorskip("array_api_compat")

ROOT = Path(__file__).resolve().parent.parent
RTOL = 1e-9  # float64 throughout: only the order of the chunked sums differs
N, D, H, O, CHUNK = 2_000, 6, 5, 3, 250  # 8 row chunks


class _Computed(Exception):
    """Raised by the scheduler set while the graph is built."""


def _no_compute(*args, **kwargs):
    raise _Computed("something was computed while the graph was built")


def _modules():
    """(NumPy, array-API) modules of logistic.mc (with its HVP) and mlp.mc."""
    text = {n: (ROOT / "examples" / f"{n}.mc").read_text(encoding="utf-8")
            for n in ("logistic", "mlp")}
    return {(n, t): matcalc.compile(text[n], target=t, hvp=n == "logistic")
            for n in text for t in ("numpy", "array-api")}


MODULES = _modules()


def _data(store: Path | None = None) -> dict:
    """The recipe's data, as chunked Dask arrays drawn chunk by chunk (and,
    with a store, written to zarr and read back lazily), and the NumPy
    parameters w, v, W1, b1, W2, b2."""
    rng = da.random.default_rng(0)
    X = rng.standard_normal((N, D), chunks=(CHUNK, D))
    arrays = dict(X=X, y=da.sign(rng.standard_normal(N, chunks=CHUNK)),
                  T=rng.standard_normal((N, O), chunks=(CHUNK, O)))
    if store is not None:
        pytest.importorskip("zarr")
        for name, a in arrays.items():
            a.to_zarr(str(store / f"{name}.zarr"))
        arrays = {n: da.from_zarr(str(store / f"{n}.zarr")) for n in arrays}
    r = np.random.default_rng(1)
    params = dict(w=r.standard_normal(D), v=r.standard_normal(D),
                  W1=r.standard_normal((D, H)), b1=r.standard_normal(H),
                  W2=r.standard_normal((H, O)), b2=r.standard_normal(O))
    return {**arrays, **params}


def _graph(modules: dict, d: dict) -> dict:
    """The logistic value, gradient and HVP and the MLP loss and gradients
    of the array-API modules on the data d: Dask arrays, nothing computed."""
    logistic, mlp = modules["logistic", "array-api"], modules["mlp", "array-api"]
    f, g = logistic.value_and_grad(X=d["X"], y=d["y"], w=d["w"])
    loss, grads = mlp.value_and_grad(X=d["X"], T=d["T"], W1=d["W1"], b1=d["b1"],
                                     W2=d["W2"], b2=d["b2"])
    return dict(f=f, dw=g["w"], hv=logistic.hvp(d["v"], X=d["X"], y=d["y"], w=d["w"]),
                loss=loss, **{f"d{k}": a for k, a in grads.items()})


def _reference(d: dict) -> dict:
    """The same quantities from the NumPy target on the data in memory."""
    X, y, T = (np.asarray(d[n]) for n in "XyT")
    logistic, mlp = MODULES["logistic", "numpy"], MODULES["mlp", "numpy"]
    f, g = logistic.value_and_grad(X=X, y=y, w=d["w"])
    loss, grads = mlp.value_and_grad(X=X, T=T, W1=d["W1"], b1=d["b1"],
                                     W2=d["W2"], b2=d["b2"])
    return dict(f=f, dw=g["w"], hv=logistic.hvp(d["v"], X=X, y=y, w=d["w"]),
                loss=loss, **{f"d{k}": a for k, a in grads.items()})


def _lazy_graph(d: dict) -> dict:
    """The graph, built under a scheduler that fails if anything is computed."""
    with dask.config.set(scheduler=_no_compute):
        graph = _graph(MODULES, d)
    assert all(isinstance(a, da.Array) for a in graph.values()), graph
    return graph


def _same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=RTOL, err_msg=name)


def test_graph_build_computes_nothing():
    """The no-compute scheduler does fail on a compute (the check can fail)."""
    graph = _lazy_graph(_data())
    with dask.config.set(scheduler=_no_compute), pytest.raises(_Computed):
        dask.compute(graph["dw"])


def test_threaded_scheduler_matches_numpy_target():
    d = _data()
    graph = _lazy_graph(d)
    (got,) = dask.compute(graph, scheduler="threads")
    _same(got, _reference(d))


def test_zarr_on_disk_matches_numpy_target(tmp_path):
    d = _data(tmp_path)
    assert d["X"].chunks[0] == (CHUNK,) * (N // CHUNK)
    graph = _lazy_graph(d)
    (got,) = dask.compute(graph, scheduler="threads")
    _same(got, _reference(d))


def test_distributed_local_cluster_matches_numpy_target(tmp_path):
    """On dask.distributed, in its own process: a LocalCluster's event loop
    started after torch or jax ran in the suite's process can hang there."""
    pytest.importorskip("distributed")
    script = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(ROOT / "tests")!r})
import distributed
import test_dask_recipe as t
d = t._data(Path({str(tmp_path)!r}))
with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                              memory_limit="512MiB", dashboard_address=None) as cluster, \\
        distributed.Client(cluster) as client:
    got = client.gather(client.compute(t._lazy_graph(d)))
t._same(got, t._reference(d))
print("same as the NumPy target")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=240, cwd=ROOT, check=False)
    assert done.returncode == 0 and "same as" in done.stdout, done.stdout + done.stderr


def test_readme_recipe_runs():
    """The README's Dask subsection: its Python block runs as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Beyond one machine's memory: Dask", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    exec(compile(block, "README.md (Dask)", "exec"), {"__name__": "readme"})


def test_benchmark_quick_mode_stays_under_its_memory_limit():
    """benchmarks/bench_dask.py --quick in its own process: exit 0 (peak
    resident memory under 2 GB) and the figures printed."""
    bench = ROOT / "benchmarks" / "bench_dask.py"
    done = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "peak RSS" in done.stdout and "hvp       streamed" in done.stdout
