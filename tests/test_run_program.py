"""The fuzz tests' line-by-line evaluation of a program (strategies.run_program)
and the evaluation it goes through (matcalc.targets.evaluation)."""

from __future__ import annotations

import re

import numpy as np

import matcalc
from matcalc.ir.shapes import dim
from matcalc.ops import ones
from matcalc.targets.evaluation import evaluate
from strategies import run_program


def test_each_line_is_computed_from_the_lines_before():
    p = matcalc.parse("A: N x N\nx: N\nu = A @ x\nv = exp(u) / sum(exp(u))\n"
                      "f = sum(v * u)\n")
    rng = np.random.default_rng(0)
    A, x = rng.standard_normal((4, 4)), rng.standard_normal(4)
    env = run_program(p, {"A": A, "x": x, "N": 4})
    u = A @ x
    v = np.exp(u) / np.sum(np.exp(u))
    np.testing.assert_allclose(env["u"], u, rtol=1e-14)
    np.testing.assert_allclose(env["v"], v, rtol=1e-14)
    np.testing.assert_allclose(env["f"], np.sum(v * u), rtol=1e-14)


def test_the_printed_gradient_program_computes_the_gradients():
    # fuzz seed 124's shape: dz's line is ones(K * N, K * N) * H2 ...
    decls = "x: K x K\nz: N x N\nB: scalar\n"
    p = matcalc.parse(decls + "H2 = exp(B)\nL = H2 * sum(kron(sin(x), z))\nwrt z\n")
    # a gradient's line, ∂L/∂z = ..., under the name the code gives it, dz
    printed = str(matcalc.grad(p)).splitlines()[1:]
    program = [re.sub(r"^∂\w+/∂(\w+) =", r"d\1 =", line) for line in printed]
    assert "K * N" in "\n".join(program)
    rng = np.random.default_rng(1)
    x, z, B = rng.standard_normal((2, 2)), rng.standard_normal((3, 3)), 0.3
    env = run_program(matcalc.parse(decls + "\n".join(program) + "\n"),
                      {"x": x, "z": z, "B": B, "K": 2, "N": 3})
    want = matcalc.compile(p).value_and_grad(x=x, z=z, B=B)[1]["z"]
    np.testing.assert_allclose(env["dz"], want, rtol=1e-12)


def test_evaluate_finds_the_dimensions_of_a_product_shape():
    K, N = dim("K"), dim("N")
    value = evaluate(ones((K * N, N)), {"K": 2, "N": 3})
    assert value.shape == (6, 3) and np.all(value == 1)
