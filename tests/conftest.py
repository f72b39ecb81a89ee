"""Shared helpers for the matcalc test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.ir.expr import const

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MLP = EXAMPLES / "mlp.mc"

AFFINE_SOURCE = "X: N x D\nW: D x K\nb: K\nS = X @ W + b\nwrt X, W, b\n"


def scope_of(problem, gradient=None) -> dict:
    """The names an expression of `problem` may mention: its dimensions (as
    constants), its variables, its named intermediates and, for an
    array-valued function, the seed."""
    scope = {**{n: const(s) for n, s in problem.dims.items()}, **problem.variables,
             **problem.intermediates}
    if gradient is not None and gradient.seed is not None:
        scope[gradient.seed.name] = gradient.seed
    return scope


def close_to(value, fd, tol=1e-5) -> bool:
    """Whether `value` has `fd`'s entries (finite differences), within `tol`
    of the larger of their largest entries (at least 1e-2)."""
    value = np.asarray(value, dtype=float)
    if value.size != fd.size:
        return False
    value = value.reshape(fd.shape)
    scale = max(np.max(np.abs(fd)), np.max(np.abs(value)), 1e-2)
    return bool(np.max(np.abs(value - fd)) / scale <= tol)


def jax_value_and_grad(problem, inputs: dict):
    """(value, {name: gradient}) of the problem's `--target jax` module under
    jax.jit(jax.value_and_grad), in float64."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    module = matcalc.compile(problem, target="jax")
    args = [jax.numpy.asarray(inputs[n]) for n in module.INPUTS]
    wrt = [module.INPUTS.index(w) for w in module.WRT]
    value, grads = jax.jit(jax.value_and_grad(module.f, argnums=wrt))(*args)
    return value, dict(zip(module.WRT, grads))


def run_cli(*args, input: bytes | None = None, cwd=None, timeout: float = 60):
    """Run `python -m matcalc.cli ARGS` and return the CompletedProcess (bytes)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "matcalc.cli", *map(str, args)],
                          input=input, capture_output=True, cwd=cwd, env=env,
                          timeout=timeout)


@pytest.fixture(scope="session")
def mlp_source() -> str:
    return MLP.read_text("utf-8")


@pytest.fixture(scope="session")
def mlp_problem(mlp_source):
    return matcalc.parse(mlp_source, str(MLP))


@pytest.fixture(scope="session")
def affine_problem():
    return matcalc.parse(AFFINE_SOURCE)
