"""Values the printed program computes once: a product and its transpose,
a sum inside a longer sum, a bound sum among a gradient's terms, and the
names their adjoints take. Each gradient is also checked against central
differences through the generated NumPy module."""

from __future__ import annotations

import numpy as np

import matcalc
from matcalc.ir.expr import Var, postorder

from conftest import EXAMPLES
from user_corpus import CORPUS


def _lines(source: str, **shapes) -> list[str]:
    p = matcalc.problem(source, **shapes)
    assert matcalc.check(p).ok
    return str(matcalc.grad(p)).splitlines()[1:]


def test_a_product_used_transposed_is_computed_once():
    """d tr(X³)/dX = 3 (X²)ᵀ: X X is formed once, in the forward pass (the
    backward pass formed Xᵀ Xᵀ again)."""
    assert _lines("trace(X @ X @ X)", X="N x N") == ["t0 = X @ X", "∂f/∂X = 3 * t0.T"]


def test_a_transpose_of_a_transposed_product_is_the_product():
    """∂ tr(Aᵀ Xᵀ B)/∂B = X A, the name of the product, not t0.T.T."""
    lines = _lines("sum((X @ A) ** 2) + trace(A.T @ X.T @ B)", X="N x D", A="D x N", B="N x N")
    assert lines[0] == "t0 = X @ A" and lines[-1] == "∂f/∂B = t0"


def test_a_product_and_its_transpose_bind_the_form_without_transposes():
    """Attention's HVP uses X v_Wq and its transpose: the name is X @ v_Wq."""
    p = matcalc.parse(open(matcalc_example("attention.mc")).read())
    text = str(matcalc.hvp(p))
    assert "= X @ v_Wq\n" in text and "v_Wq.T @ X.T" not in text


def test_a_sum_inside_a_longer_sum_is_named_not_its_terms():
    """log softmax(X W + b) = Z − lse(Z) with Z = X W + b: Z is one name (X W
    alone was one more), and its adjoint is δZ's, not a numbered g."""
    lines = _lines("-sum(Y * log(softmax(X @ W + b, axis=1))) / N",
                   X="N x D", Y="N x K", W="D x K", b="K")
    assert lines[0] == "t0 = X @ W + b"
    assert "δt0 = g0 - sum(g0, axis=1)[:, None] * P" not in lines  # P is no name here
    assert any(line.startswith("δt0 = ") for line in lines)
    assert lines[-2:] == ["∂f/∂W = X.T @ δt0", "∂f/∂b = sum(δt0, axis=0)"]


def test_a_vector_times_a_matrix_is_the_matrix_transposed_times_it():
    """xᵀ A Aᵀ x by x and A: x @ A and A.T @ x are one vector, A @ t0 one
    more, and the two halves of each gradient collect (were dt0 = x @ A
    again, A @ dt0 + t1 and outer(x, t0) + outer(x, dt0))."""
    assert _lines("x @ A @ A.T @ x", x="D", A="D x N") == [
        "t0 = x @ A", "t1 = A @ t0", "∂f/∂x = 2 * t1", "∂f/∂A = 2 * outer(x, t0)"]
    assert _lines("trace(W.T @ X.T @ X @ W)", X="N x D", W="D x K")[-1] == "∂f/∂W = 2 * t1.T"


def test_a_gradients_terms_use_a_bound_sum():
    """‖W − I‖² + tr((I + W Wᵀ)⁻¹) by W: 2 (W − I) − 2 T T W with W − I named."""
    lines = _lines("norm(W - eye(D, K)) ** 2 + trace(inv(eye(D) + W @ W.T))", W="D x K")
    assert lines == ["t0 = W - eye(D, K)", "t1 = inv(eye(D) + W @ W.T)",
                     "∂f/∂W = 2 * (t0 - t1 @ t1 @ W)"]


def matcalc_example(name: str) -> str:
    return str(EXAMPLES / name)


def matcalc_examples():
    return EXAMPLES.glob("*.mc")


def test_a_sum_written_in_another_order_is_the_same_value():
    """exp(−xᵀAx/2) by x twice: Aᵀx + Ax and Ax + Aᵀx are one vector, named
    once (was outer(t0 + g0, g0 + t0) with g0 = A @ x); the Hessian is
    f/4 s sᵀ − f (A + Aᵀ)/2 with s = (A + Aᵀ) x."""
    p = matcalc.problem("exp(-(x @ A @ x) / 2)", x="N", A="N x N")
    text = str(matcalc.hessian(p, "x"))
    assert text.splitlines()[-2:] == ["g0 = t0 + A @ x",
                                      "H_x = f * outer(g0, g0) / 4 - f * (A.T + A) / 2"]
    rng = np.random.default_rng(0)
    x, A = rng.standard_normal(4) / 2, rng.standard_normal((4, 4)) / 2
    f, s = np.exp(-x @ A @ x / 2), (A + A.T) @ x
    H = matcalc.compile(p, hessian="x").hessian(x=x, A=A)
    np.testing.assert_allclose(H, f / 4 * np.outer(s, s) - f * (A + A.T) / 2, rtol=1e-12)


def test_the_softmax_hessian_is_the_textbook_one():
    """∂²/∂x² cᵀ softmax(x) = diag(g) − g pᵀ − p gᵀ with g = p ⊙ (c − cᵀp): the
    Jacobian diag(p) − p pᵀ times c is never formed, and c·p, the value, is
    not computed again as p·c (was outer(t0, (diag(t0) - outer(t0, t0)) @ c))."""
    p = matcalc.problem("sum(softmax(x) * c)", x="N", c="N")
    assert str(matcalc.hessian(p, "x")).splitlines()[-3:] == [
        "f = t0 @ c", "g0 = t0 * (c - f)", "H_x = diag(g0) - outer(g0, t0) - outer(t0, g0)"]
    rng = np.random.default_rng(1)
    x, c = rng.standard_normal(5), rng.standard_normal(5)
    s = np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    g = s * (c - c @ s)
    H = matcalc.compile(p, hessian="x").hessian(x=x, c=c)
    np.testing.assert_allclose(H, np.diag(g) - np.outer(g, s) - np.outer(s, g), atol=1e-15)


def test_a_scaled_matrix_times_a_vector_scales_the_vector():
    """∂²/∂x² (w2ᵀ tanh(W1 x) − t)² / 2 = g gᵀ − 2 r W1ᵀ diag(…) W1 with
    g = W1ᵀ (w2 ⊙ (1 − h²)): one vector (was W1ᵀ (w2 ⊙ g0) beside
    (g0[None, :] ⊙ W1ᵀ) w2, an H x D scaled copy of W1ᵀ)."""
    shapes = dict(w2="H", W1="H x D", x="D", t="scalar")
    p = matcalc.problem("(w2 @ tanh(W1 @ x) - t) ** 2 / 2", **shapes)
    lines = str(matcalc.hessian(p, "x")).splitlines()
    assert "g1 = W1.T @ (w2 * g0)" in lines and lines[-1].startswith("H_x = outer(g1, g1) - ")
    rng = np.random.default_rng(2)
    w2, W1, x = rng.standard_normal(3), rng.standard_normal((3, 4)), rng.standard_normal(4)
    h = np.tanh(W1 @ x)
    g = W1.T @ (w2 * (1 - h ** 2))
    r = w2 @ h - 0.5
    want = np.outer(g, g) - 2 * r * W1.T @ ((h * (1 - h ** 2) * w2)[:, None] * W1)
    got = matcalc.compile(p, hessian="x").hessian(w2=w2, W1=W1, x=x, t=0.5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_outer_products_sharing_a_vector_are_one():
    """uᵀAx + wᵀAx by A is (u + w) xᵀ, one N x N pass (was outer(w, x) +
    outer(u, x), three)."""
    lines = _lines("u @ A @ x + w @ A @ x", u="N", w="N", x="N", A="N x N")
    assert lines[-1] == "∂f/∂A = outer(w + u, x)"


def _defined_before_use(program, problem) -> list[str]:
    """The names a binding reads before any binding (or input) defines them."""
    known = set(problem.variables) | {str(d) for d in problem.dims} | {"v_" + n for n in
                                                                     problem.variables}
    if program.seed is not None:
        known.add(program.seed.name)
    wrong = []
    for b in program.bindings:
        read = {n.name for n in postorder([b.expr]) if isinstance(n, Var)}
        wrong += [f"{b.name} reads {name}" for name in sorted(read - known)
                  if not name.startswith("v_")]
        known.add(b.name)
    return wrong


def test_every_binding_reads_only_what_is_bound_before_it():
    """Naming, twins and inlining keep the program in order: every name a
    binding reads is an input, a size or an earlier binding, in the printed
    program and the one code runs, of every example's and corpus problem's
    gradient and HVP (the GELU network's HVP once read g9 before binding it)."""
    texts = [(path.name, path.read_text("utf-8")) for path in sorted(matcalc_examples())]
    for name, text in texts + [(u.id, u.text) for u in CORPUS]:
        p = matcalc.parse(text)
        results = [matcalc.grad(p)]
        if not p.output.shape:
            results += [matcalc.hvp(p)]
        for r in results:
            for program in (r.program, getattr(r, "code", None)):
                if program is not None:
                    assert not _defined_before_use(program, p), (name, str(r))


def test_twins_in_a_sum_collect_in_either_order_of_wrt():
    """tr(Wᵀ XᵀX W) by W and X: the HVP by X holds (g0 + g1) Wᵀ twice, one
    product however the variables are listed (with wrt W, X it printed
    g2 @ W.T + g2 @ W.T, an N·D·K product twice; review of session 14)."""
    for wrt in ("W, X", "X, W"):
        p = matcalc.problem("trace(W.T @ X.T @ X @ W)", X="N x D", W="D x K", wrt=wrt)
        text = str(matcalc.hvp(p))
        assert text.splitlines()[-1 if wrt == "W, X" else -2] == \
            "Hv_X = 2 * (t0.T @ v_W.T) + 2 * (g0 @ W.T)", text


def test_a_symmetric_factor_is_its_own_transpose_in_a_twin():
    """Multivariate regression by B and S: (S⁻¹ Rᵀ)ᵀ and R S⁻¹ are one
    matrix, as S⁻¹ is symmetric, so the code computes -Xᵀ t1ᵀ (it formed R S⁻¹
    again, one more N·K² product)."""
    p = matcalc.parse("X: N x D\nY: N x K\nB: D x K\nS: K x K spd\nR = Y - X @ B\n"
                      "nll = N / 2 * logdet(S) + 0.5 * trace(inv(S) @ R.T @ R)\nwrt B, S")
    assert matcalc.check(p).ok
    assert "    dB = -(X.T @ t1.T)\n" in matcalc.codegen(p)
