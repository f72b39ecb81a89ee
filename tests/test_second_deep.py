"""Second order on long inputs: Hessians and Hessian-vector products of
products of 300 factors and of 2,000 nested functions work (they ended in
RecursionError, or ran for minutes), and their values are right.

Each test asserts the pipeline works at the stated size (a MatcalcError is a
failure here), with a hang guard; references are plain NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.targets.numpy import load

from test_fuzz import time_limit

GUARD = 120   # seconds: a hang guard on a shared machine, not a speed test


def _module(text: str, **extras):
    with time_limit(GUARD):
        p = matcalc.parse(text)
        module = load(matcalc.codegen(p, **extras), p.output_name)
        str(matcalc.hvp(p)) if extras.get("hvp") else None
    return module


@pytest.mark.parametrize("n", [300])
def test_hvp_and_hessian_of_a_product_of_300_factors(n):
    """f = Σ_i Π_k cos(x_i / k): f'' = p ((Σ tan(x/k)/k)² − Σ sec²(x/k)/k²)."""
    text = "x: N\nf = sum(" + " * ".join(f"cos(x / {k})" for k in range(1, n + 1)) + ")\n"
    module = _module(text, hvp=True, hessian=True)
    x = np.array([0.3, -0.7, 1.1])
    v = np.array([0.5, -1.0, 2.0])
    k = np.arange(1, n + 1)[:, None]
    p = np.prod(np.cos(x / k), axis=0)
    t = np.sum(np.tan(x / k) / k, axis=0)
    second = p * (t ** 2 - np.sum(1 / (np.cos(x / k) ** 2 * k ** 2), axis=0))
    _, g = module.value_and_grad(x=x)
    np.testing.assert_allclose(g["x"], -p * t, rtol=1e-10)
    np.testing.assert_allclose(module.hvp(v, x=x), second * v, rtol=1e-10)
    np.testing.assert_allclose(module.hessian(x=x), np.diag(second), rtol=1e-10, atol=1e-14)


def test_hvp_and_hessian_of_a_chain_of_300_matrix_products():
    """f = tr(A³⁰⁰): H[V] = 300 Σ_j (A^j V A^(298−j))ᵀ."""
    n = 300
    module = _module("A: N x N\nf = trace(" + " @ ".join(["A"] * n) + ")\n",
                     hvp=True, hessian=True)
    rng = np.random.default_rng(0)
    A = np.eye(3) + 0.01 * rng.standard_normal((3, 3))
    A /= np.max(np.abs(np.linalg.eigvals(A)))
    V = rng.standard_normal((3, 3))
    powers = [np.eye(3)]
    for _ in range(n):
        powers.append(powers[-1] @ A)
    expected = n * sum(powers[j] @ V @ powers[n - 2 - j] for j in range(n - 1)).T
    _, g = module.value_and_grad(A=A)
    np.testing.assert_allclose(g["A"], n * powers[n - 1].T, rtol=1e-9)
    np.testing.assert_allclose(module.hvp(V, A=A), expected, rtol=1e-9)
    H = np.asarray(module.hessian(A=A))
    applied = (H @ V.flatten(order="F")).reshape((3, 3), order="F") if H.ndim == 2 \
        else np.tensordot(H, V, axes=2)
    np.testing.assert_allclose(applied, expected, rtol=1e-9)


def test_hessian_of_2000_nested_sines():
    n = 2000
    module = _module("x: N\nf = sum(" + "sin(" * n + "x" + ")" * n + ")\n",
                     hvp=True, hessian=True)
    x = np.array([0.4, -1.3])
    y, d1, d2 = x.copy(), np.ones_like(x), np.zeros_like(x)
    for _ in range(n):   # y_k = sin(y_{k-1}) with its first and second derivatives
        y, d1, d2 = np.sin(y), np.cos(y) * d1, np.cos(y) * d2 - np.sin(y) * d1 ** 2
    value, g = module.value_and_grad(x=x)
    np.testing.assert_allclose(value, np.sum(y), rtol=1e-12)
    np.testing.assert_allclose(g["x"], d1, rtol=1e-10)
    np.testing.assert_allclose(module.hessian(x=x), np.diag(d2), rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(module.hvp(np.array([1.0, 2.0]), x=x), d2 * [1.0, 2.0],
                               rtol=1e-9)


def test_long_second_order_prints_and_checks():
    """The printed forms of long second-order results build too (text and
    LaTeX), and the long product's gradient passes check."""
    text = "x: N\nf = sum(" + " * ".join(f"cos(x / {k})" for k in range(1, 201)) + ")\n"
    with time_limit(GUARD):
        p = matcalc.parse(text)
        for result in (matcalc.hvp(p), matcalc.hessian(p, "x")):
            assert str(result) and result.latex()
        assert matcalc.check(p).ok
