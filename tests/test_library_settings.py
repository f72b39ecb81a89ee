"""Bad settings and inputs through the library and the CLI are one clear
error (a MatcalcError, exit 2), never a traceback; a gradient that is not
finite at the inputs is never reported as right."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

import matcalc
from matcalc.checks.against import check_against
from matcalc.cli import main

from conftest import ROOT

P = "X: N x D\nw: D\nf = sum(X @ w)\n"
MLP = str(pathlib.Path(__file__).resolve().parent.parent / "examples" / "mlp.mc")


@pytest.mark.parametrize("settings", [
    {"dims": [("N", 3)]}, {"seed": -1}, {"seed": "a"}, {"seed": 1.5}, {"seed": True},
    {"tol": "x"}, {"tol": -1}, {"tol": 0}, {"tol": float("nan")}, {"tol": float("inf")},
])
def test_check_settings_are_validated(settings):
    with pytest.raises(matcalc.MatcalcError):
        matcalc.check(matcalc.parse(P), **settings)
    with pytest.raises(matcalc.MatcalcError):
        check_against(matcalc.parse(P), lambda **kw: {}, **settings)


@pytest.mark.parametrize("call", [
    lambda: matcalc.problem("sum(X)", X="N", wrt=3),
    lambda: matcalc.problem("sum(X)\nf2 = 2", X="N"),
    lambda: matcalc.problem("sum(X)", X="N\ny: N"),
    lambda: matcalc.problem(None, X="N"),
    lambda: matcalc.parse(P).expr(None),
])
def test_library_calls_with_bad_arguments(call):
    with pytest.raises(matcalc.MatcalcError):
        call()


def test_a_gradient_that_is_not_finite_is_not_ok():
    """norm(x) at x = 0: the generated dx = x / f is nan, never 'ok'."""
    p = matcalc.problem("norm(x)", x="N")
    with pytest.raises(matcalc.DomainError, match="not finite"):
        matcalc.check(p, inputs={"x": np.zeros(3)})


def _cli(*args):
    """The command's exit code and what it wrote to stderr, run in process."""
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return types.SimpleNamespace(returncode=code, stderr=err.getvalue())


@pytest.mark.parametrize("content", [b"PK\x03\x04garbage", b"not a zip", b""])
def test_an_unreadable_inputs_file_is_exit_2(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    r = _cli("check", "-e", "sum(X)", "-d", "X: N x D", "--inputs", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "--inputs" in r.stderr


def test_a_truncated_inputs_file_is_exit_2(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, X=np.ones((3, 2)))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:100])
    r = _cli("check", "-e", "sum(X)", "-d", "X: N x D", "--inputs", str(cut))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr


def test_an_endless_problem_file_is_refused():
    """/dev/zero is read only up to the size limit, then refused."""
    r = _cli("grad", "/dev/zero")
    assert r.returncode == 2 and "larger than" in r.stderr, r.stderr


def test_wrt_given_twice_is_both():
    r = _cli("grad", MLP, "--wrt", "W2", "--wrt", "b2")
    assert r.returncode == 0, r.stderr
    assert _cli("grad", MLP, "--wrt", "W2,b2").returncode == 0


@pytest.mark.parametrize("wrt", ["W2,", ",W2", "W2,,b2"])
def test_wrt_with_an_empty_name_is_exit_2(wrt):
    r = _cli("grad", MLP, "--wrt", wrt)
    assert r.returncode == 2 and "empty name" in r.stderr, r.stderr


def test_results_held_by_a_module_leave_quietly_at_exit(tmp_path):
    # a module holding gradients (with float constants) until Python tears
    # it down printed 'Exception ignored ... sys.meta_path is None' per node
    (tmp_path / "holder.py").write_text(
        "import matcalc\n"
        "KEEP = [matcalc.grad(f'x: N\\nf = sum(x * {k}.5 + exp(x / {k}.25))')"
        " for k in range(1, 20)]\n", "utf-8")
    proc = subprocess.run([sys.executable, "-c", "import holder"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]
