"""A table of textbook gradient identities, each checked three ways.

Every row is a scalar function, the variable to differentiate by, and the
gradient as a textbook writes it (transcribed into matcalc's language), with
its source. Equation numbers of the Matrix Cookbook are those of the
15 November 2012 edition (Petersen & Pedersen).

* numerically: `matcalc.check` for two seeds, and the expected formula itself
  against central differences at the same random inputs (so the table cannot
  hold a wrong formula);
* structurally: matcalc's simplified gradient must be, after
  canonicalisation (`matcalc.passes.simplify.canonical`: terms and factors sorted,
  products distributed over sums, transposes at the leaves, matrix products
  grouped from the left, x @ A read as Aᵀx), the very node the expected
  formula canonicalises to (nodes are interned, so this is `is`). A row whose
  matcalc form is not yet the textbook's is marked `xfail(strict=True)` with
  what differs (`simplifier`): the table is not weakened to matcalc's form;
  the simplifier must reach it, and the mark then goes;
* against SymPy: `to_sympy` of the function, SymPy's `.diff` by the
  variable, evaluated with NumPy and compared with central differences;
  `test_sympy_on_the_table` prints the per-row outcome with `-s`.

Transcription rules. A transpose of a sum is written on its terms
((XB + BX)ᵀ as Xᵀ Bᵀ + Bᵀ Xᵀ), the normal form matcalc's simplifier keeps;
otherwise formulas are as printed in the source, with the scalar written
first (2 Aᵀ (Ax − b) as `2 * A.T @ (A @ x - b)`). `also` lists other forms
accepted for a row, only where both are textbook-standard and the row says
why (`why`): they differ by the distributive law, (A + Aᵀ)x against Ax + Aᵀx.
Canonicalisation makes the order of terms and the distributive law
irrelevant, so (A + Aᵀ)x and Ax + Aᵀx compare equal by construction; `also`
remains for forms that differ by other laws.

Symmetric matrices follow matcalc's convention: the gradient by a symmetric S
is the symmetric G with dL = tr(G dS) for every symmetric dS, i.e. the
symmetric part (G₀ + G₀ᵀ)/2 of the unconstrained gradient G₀ (Srinivasan and
Panda, "What is the gradient of a scalar function of a symmetric matrix?",
2020). The Matrix Cookbook's §2.8.2 uses another convention
(∂ tr(AS)/∂S = A + Aᵀ − (A ∘ I)); rows with symmetric variables say so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest
import sympy

import matcalc
from matcalc.passes.simplify import canonical
from matcalc.checks import verify
from matcalc.bridges.sympy import to_sympy

from conftest import close_to
from sympy_numeric import Unevaluated, evaluate


@dataclass(frozen=True)
class Row:
    id: str
    decls: str             # declarations, `;`-separated as in a problem file
    f: str                 # the scalar function
    wrt: str               # the variable
    expected: str          # the textbook gradient, in matcalc's language
    source: str
    also: tuple = ()       # other accepted textbook forms (see `why`)
    why: str = ""          # why `also` is accepted, or a note on a convention
    simplifier: str = ""   # matcalc's form differs from `expected` (strict xfail)
    missing: str = ""      # a function of the row is not implemented yet (strict xfail)
    dims: tuple = ()       # sizes the mathematics needs, ((name, size), ...)

    def problem(self):
        return matcalc.parse(f"{self.decls}\nf = {self.f}\nwrt {self.wrt}")


COOKBOOK = "Matrix Cookbook"
MC_ORG = "matrixcalculus.org"

ROWS = [
    # ------------------------------------------------------------ traces ---
    Row("tr_X", "X: N x N", "trace(X)", "X", "eye(N)", f"{COOKBOOK} (eq. 100)"),
    Row("tr_XA", "X: N x M; A: M x N", "trace(X @ A)", "X", "A.T", f"{COOKBOOK} (eq. 101)"),
    Row("tr_AX", "A: M x N; X: N x M", "trace(A @ X)", "X", "A.T",
        f"{COOKBOOK} (eq. 101, cyclic); {MC_ORG} tr(A*X)"),
    Row("tr_AXB", "A: K x N; X: N x M; B: M x K", "trace(A @ X @ B)", "X", "A.T @ B.T",
        f"{COOKBOOK} (eq. 102); {MC_ORG} tr(A*X*B)"),
    Row("tr_AXtB", "A: K x M; X: N x M; B: N x K", "trace(A @ X.T @ B)", "X", "B @ A",
        f"{COOKBOOK} (eq. 103)"),
    Row("tr_XtA", "X: N x M; A: N x M", "trace(X.T @ A)", "X", "A", f"{COOKBOOK} (eq. 104)"),
    Row("tr_AXt", "A: N x M; X: N x M", "trace(A @ X.T)", "X", "A", f"{COOKBOOK} (eq. 105)"),
    Row("tr_X2", "X: N x N", "trace(X @ X)", "X", "2 * X.T", f"{COOKBOOK} (eq. 107)"),
    Row("tr_X2B", "X: N x N; B: N x N", "trace(X @ X @ B)", "X", "X.T @ B.T + B.T @ X.T",
        f"{COOKBOOK} (eq. 108), (XB + BX)ᵀ"),
    Row("tr_XtBX", "X: N x M; B: N x N", "trace(X.T @ B @ X)", "X", "B @ X + B.T @ X",
        f"{COOKBOOK} (eq. 109); the issue and {MC_ORG} write (B + Bᵀ)X",
        also=("(B + B.T) @ X",), why="BX + BᵀX (Cookbook) and (B + Bᵀ)X are both standard"),
    Row("tr_XBXt", "X: N x M; B: M x M", "trace(X @ B @ X.T)", "X", "X @ B.T + X @ B",
        f"{COOKBOOK} (eq. 112)", also=("X @ (B + B.T)",),
        why="XBᵀ + XB (Cookbook) and X(B + Bᵀ) are both standard"),
    Row("tr_XtX", "X: N x M", "trace(X.T @ X)", "X", "2 * X", f"{COOKBOOK} (eq. 116)"),
    Row("tr_XXt", "X: N x M", "trace(X @ X.T)", "X", "2 * X", f"{COOKBOOK} (eq. 116)"),
    Row("tr_AXBX", "A, X, B: N x N", "trace(A @ X @ B @ X)", "X",
        "A.T @ X.T @ B.T + B.T @ X.T @ A.T", f"{COOKBOOK} (eq. 115)"),
    Row("tr_BtXtCXB", "B: M x K; X: N x M; C: N x N", "trace(B.T @ X.T @ C @ X @ B)", "X",
        "C.T @ X @ B @ B.T + C @ X @ B @ B.T", f"{COOKBOOK} (eq. 117)"),
    Row("tr_XtBXC", "X: N x M; B: N x N; C: M x M", "trace(X.T @ B @ X @ C)", "X",
        "B @ X @ C + B.T @ X @ C.T", f"{COOKBOOK} (eq. 118)"),
    Row("tr_AXBXtC", "A: K x N; X: N x M; B: M x M; C: N x K", "trace(A @ X @ B @ X.T @ C)",
        "X", "A.T @ C.T @ X @ B.T + C @ A @ X @ B", f"{COOKBOOK} (eq. 119)"),
    Row("tr_AXBC_sq", "A: K x N; X: N x M; B: M x L; C: K x L",
        "trace((A @ X @ B + C) @ (A @ X @ B + C).T)", "X", "2 * A.T @ (A @ X @ B + C) @ B.T",
        f"{COOKBOOK} (eq. 120)"),
    Row("tr_X3", "X: N x N", "trace(X @ X @ X)", "X", "3 * (X @ X).T",
        f"{COOKBOOK} (eq. 122, k = 3)", also=("3 * X.T @ X.T",),
        why="k (X^(k-1))ᵀ (Cookbook) and k (Xᵀ)^(k-1) are the same power written two ways"),
    Row("tr_AXinvB", "A: K x N; X: N x N; B: N x K", "trace(A @ inv(X) @ B)", "X",
        "-inv(X).T @ A.T @ B.T @ inv(X).T", f"{COOKBOOK} (eq. 124)"),
    Row("tr_inv", "X: N x N", "trace(inv(X))", "X", "-inv(X).T @ inv(X).T",
        f"{COOKBOOK} (eq. 124 with A = B = I)"),
    Row("tr_kron", "A: M x M; X: N x N", "trace(kron(A, X))", "X", "trace(A) * eye(N)",
        f"{COOKBOOK} (eq. 106)"),
    Row("tr_kron_XX", "X: N x N", "trace(kron(X, X))", "X", "2 * trace(X) * eye(N)",
        f"{COOKBOOK} (eq. 121)"),
    Row("sum_diag", "X: N x N", "sum(diag(X))", "X", "eye(N)",
        f"{COOKBOOK} (eq. 100), tr X = 1ᵀ diag(X)"),
    # ------------------------------------------- determinants and inverses ---
    Row("det_X", "X: N x N", "det(X)", "X", "det(X) * inv(X).T", f"{COOKBOOK} (eq. 49)"),
    Row("logdet_X", "X: N x N", "logdet(X)", "X", "inv(X).T",
        f"{COOKBOOK} (eq. 57); {MC_ORG} log(det(X))"),
    Row("log_det_X", "X: N x N", "log(det(X))", "X", "inv(X).T",
        f"{COOKBOOK} (eq. 57), written log(det X): SymPy 1.14 answers 0"),
    Row("det_AXB", "A, X, B: N x N", "det(A @ X @ B)", "X", "det(A @ X @ B) * inv(X).T",
        f"{COOKBOOK} (eq. 51)",
        simplifier="A.T @ (det(AXB) inv(AXB).T) @ B.T: the inverse of a product of square "
                   "matrices is not expanded (Aᵀ (AXB)⁻ᵀ Bᵀ = X⁻ᵀ)"),
    Row("det_X2", "X: N x N", "det(X @ X)", "X", "2 * det(X @ X) * inv(X).T",
        f"{COOKBOOK} (eq. 58, k = 2)",
        simplifier="(det(X²) (X²)⁻ᵀ) Xᵀ + Xᵀ (det(X²) (X²)⁻ᵀ): (X²)⁻ᵀ Xᵀ = X⁻ᵀ is not used"),
    Row("logdet_XtX", "X: N x M", "logdet(X.T @ X)", "X", "2 * X @ inv(X.T @ X)",
        f"{COOKBOOK} (eq. 55), 2 (X⁺)ᵀ with (X⁺)ᵀ = X (XᵀX)⁻¹ for X of full column rank",
        dims=(("N", 6), ("M", 3))),
    Row("inv_aXb", "a: N; X: N x N; b: N", "a @ inv(X) @ b", "X",
        "-inv(X).T @ outer(a, b) @ inv(X).T", f"{COOKBOOK} (eq. 61)"),
    # ------------------------------------------------ linear and quadratic ---
    Row("xta", "x, a: N", "x @ a", "x", "a", f"{COOKBOOK} (eq. 69)"),
    Row("aXb", "a: N; X: N x M; b: M", "a @ X @ b", "X", "outer(a, b)",
        f"{COOKBOOK} (eq. 70); {MC_ORG} a'*X*b"),
    Row("aXtb", "a: M; X: N x M; b: N", "a @ X.T @ b", "X", "outer(b, a)",
        f"{COOKBOOK} (eq. 71)"),
    Row("aXa", "a: N; X: N x N", "a @ X @ a", "X", "outer(a, a)", f"{COOKBOOK} (eq. 72)"),
    Row("xAx", "x: N; A: N x N", "x @ A @ x", "x", "(A + A.T) @ x",
        f"{COOKBOOK} (eq. 81); {MC_ORG} x'*A*x; the issue", also=("A @ x + A.T @ x",),
        why="(A + Aᵀ)x (Cookbook, the issue) and Ax + Aᵀx (SymPy, matrixcalculus.org) are "
            "both standard"),
    Row("xtx", "x: N", "x @ x", "x", "2 * x", f"{COOKBOOK} (eq. 131), ‖x‖² = xᵀx"),
    Row("bXtXc", "b: M; X: N x M; c: M", "b @ X.T @ X @ c", "X",
        "X @ (outer(b, c) + outer(c, b))", f"{COOKBOOK} (eq. 82)"),
    Row("affine_quad", "B: K x N; x: N; b: K; C: K x L; D: L x N; d: L",
        "(B @ x + b) @ C @ (D @ x + d)", "x",
        "B.T @ C @ (D @ x + d) + D.T @ C.T @ (B @ x + b)", f"{COOKBOOK} (eq. 83)"),
    Row("xsWxs", "x, s: N; W: N x N symmetric", "(x - s) @ W @ (x - s)", "x",
        "2 * W @ (x - s)", f"{COOKBOOK} (eq. 84), W symmetric"),
    Row("wls", "x: N; A: N x M; s: M; W: N x N symmetric", "(x - A @ s) @ W @ (x - A @ s)",
        "s", "-2 * A.T @ W @ (x - A @ s)", f"{COOKBOOK} (eq. 87), W symmetric"),
    Row("bXtDXc", "b: M; X: N x M; D: N x N; c: M", "b @ X.T @ D @ X @ c", "X",
        "D.T @ X @ outer(b, c) + D @ X @ outer(c, b)", f"{COOKBOOK} (eq. 88)"),
    Row("Xbc_quad", "X: N x M; b: M; c: N; D: N x N", "(X @ b + c) @ D @ (X @ b + c)", "X",
        "outer((D + D.T) @ (X @ b + c), b)", f"{COOKBOOK} (eq. 89)"),
    Row("xSx", "x: N; S: N x N symmetric", "x @ S @ x", "x", "2 * S @ x",
        f"{COOKBOOK} (eq. 81) with S = Sᵀ"),
    Row("mc_default", "x: N; A: N x N; c: scalar; y: N", "x @ A @ x + c * sin(y) @ x", "x",
        "(A + A.T) @ x + c * sin(y)", f"{MC_ORG} (its opening example x'*A*x + c*sin(y)'*x)",
        also=("A @ x + A.T @ x + c * sin(y)",), why="as in xAx"),
    # ------------------------------------------------------------- norms ---
    Row("norm_sq", "x: N", "norm(x) ** 2", "x", "2 * x", f"{COOKBOOK} (eq. 131)"),
    Row("norm", "x, a: N", "norm(x - a)", "x", "(x - a) / norm(x - a)",
        f"{COOKBOOK} (eq. 129)"),
    Row("ls", "A: M x N; x: N; b: M", "sum((A @ x - b) ** 2)", "x", "2 * A.T @ (A @ x - b)",
        f"{COOKBOOK} (eq. 87 with W = I); the issue"),
    Row("ls_norm", "A: M x N; x: N; b: M", "norm(A @ x - b) ** 2", "x",
        "2 * A.T @ (A @ x - b)", f"{MC_ORG} norm2(A*x-b)^2"),
    Row("mse", "X: N x D; w: D; y: N", "mean((X @ w - y) ** 2)", "w",
        "2 / N * X.T @ (X @ w - y)", "least squares, mean squared error"),
    Row("ridge", "X: N x D; w: D; y: N; lam: scalar", "sum((X @ w - y) ** 2) + lam * (w @ w)",
        "w", "2 * X.T @ (X @ w - y) + 2 * lam * w", f"{MC_ORG} (ridge regression)"),
    Row("fro", "X: N x M", "sum(X ** 2)", "X", "2 * X", f"{COOKBOOK} (eq. 132)"),
    Row("fro_norm", "X: N x M", "norm(X) ** 2", "X", "2 * X", f"{COOKBOOK} (eq. 132)"),
    Row("fro_trace", "X: N x M", "trace(X.T @ X)", "X", "2 * X",
        f"{COOKBOOK} (eq. 116), ‖X‖²_F = tr(XᵀX)"),
    Row("lowrank_U", "X: N x M; U: N x K; V: M x K", "sum((X - U @ V.T) ** 2)", "U",
        "-2 * (X - U @ V.T) @ V", f"{COOKBOOK} (eq. 132) and the chain rule; the issue"),
    Row("lowrank_V", "X: N x M; U: N x K; V: M x K", "sum((X - U @ V.T) ** 2)", "V",
        "-2 * (X - U @ V.T).T @ U", f"{COOKBOOK} (eq. 132) and the chain rule"),
    Row("norm1", "x: N", "norm1(x)", "x", "sign(x)", f"{MC_ORG} norm1(x) (a subgradient)"),
    # ------------------------------------------------------- elementwise ---
    Row("sum_exp", "X: N x M", "sum(exp(X))", "X", "exp(X)", f"{MC_ORG} sum(exp(X))"),
    Row("sum_log", "X: N x M", "sum(log(X))", "X", "1 / X", f"{MC_ORG} sum(log(X))"),
    Row("sum_sin", "x: N", "sum(sin(x))", "x", "cos(x)", f"{MC_ORG} sum(sin(x))"),
    Row("sum_sqrt", "x: N", "sum(sqrt(x))", "x", "1 / (2 * sqrt(x))", "d√x = 1/(2√x)"),
    Row("sum_cube", "x: N", "sum(x ** 3)", "x", "3 * x ** 2", "power rule"),
    Row("sum_square", "x: N", "sum(square(x))", "x", "2 * x", "power rule"),
    Row("sum_abs", "x: N", "sum(abs(x))", "x", "sign(x)", f"{MC_ORG} abs (a subgradient)"),
    Row("sum_cosh", "x: N", "sum(cosh(x))", "x", "sinh(x)", "d cosh = sinh"),
    Row("sum_tan", "x: N", "sum(tan(x))", "x", "1 + tan(x) ** 2", "d tan = 1 + tan²"),
    Row("sum_arctan", "x: N", "sum(arctan(x))", "x", "1 / (1 + x ** 2)", "d arctan = 1/(1 + x²)"),
    Row("sum_arcsin", "x: N", "sum(arcsin(x))", "x", "1 / sqrt(1 - x ** 2)",
        "d arcsin = 1/√(1 − x²)"),
    Row("sum_expm1", "x: N", "sum(expm1(x))", "x", "exp(x)", "d(eˣ − 1) = eˣ"),
    Row("tanh_Xw", "X: N x D; w: D", "sum(tanh(X @ w))", "w", "X.T @ (1 - tanh(X @ w) ** 2)",
        f"{MC_ORG} sum(tanh(X*w))"),
    Row("sigmoid_Xw", "X: N x D; w: D", "sum(sigmoid(X @ w))", "w",
        "X.T @ (sigmoid(X @ w) * (1 - sigmoid(X @ w)))", "σ' = σ(1 − σ)"),
    Row("relu_Xw", "X: N x D; w: D", "sum(relu(X @ w))", "w", "X.T @ step(X @ w)",
        "backpropagation through ReLU (a subgradient)"),
    Row("maximum_0", "x: N", "sum(maximum(x, 0))", "x", "(1 + sign(x)) / 2",
        "max(x, 0) = relu(x)",
        why="step(x) except at the tie x = 0, where maximum splits the derivative "
            "evenly (1/2); relu keeps step(x)"),
    Row("logistic", "X: N x D; w: D; y: N", "sum(log(1 + exp(-y * (X @ w))))", "w",
        "-X.T @ (y * sigmoid(-y * (X @ w)))",
        f"{MC_ORG} (logistic regression); the issue"),
    Row("logistic_softplus", "X: N x D; w: D; y: N", "sum(softplus(-y * (X @ w)))", "w",
        "-X.T @ (y * sigmoid(-y * (X @ w)))", "logistic loss written with softplus"),
    # ---------------------------------------------- log-sum-exp, softmax ---
    Row("lse", "x: N", "logsumexp(x)", "x", "softmax(x)",
        "Boyd & Vandenberghe, Convex Optimization, §3.1.5 (log-sum-exp)"),
    Row("lse_Xw", "X: N x D; w: D", "logsumexp(X @ w)", "w", "X.T @ softmax(X @ w)",
        "log-sum-exp and the chain rule"),
    Row("xent", "z, y: N", "logsumexp(z) - y @ z", "z", "softmax(z) - y",
        "softmax cross-entropy, −yᵀ log softmax(z) for 1ᵀy = 1"),
    Row("lse_rows", "X: N x M", "sum(logsumexp(X, axis=1))", "X", "softmax(X, axis=1)",
        "log-sum-exp by rows"),
    # -------------------------------------------------------------- diag ---
    Row("a_diagX", "a: N; X: N x N", "a @ diag(X)", "X", "diag(a)",
        "∂ aᵀ diag(X)/∂X = diag(a)"),
    Row("x_diag_a_x", "x, a: N", "x @ diag(a) @ x", "a", "x ** 2",
        f"{COOKBOOK} (eq. 72) with X = diag(a): xᵀdiag(a)x = aᵀ(x ⊙ x) (x * x builds x ** 2)"),
    Row("x_diag_a_x_by_x", "x, a: N", "x @ diag(a) @ x", "x", "2 * a * x",
        f"{COOKBOOK} (eq. 81) with B = diag(a)", also=("2 * diag(a) @ x",),
        why="2 diag(a) x is the Cookbook's (B + Bᵀ)x read off directly; 2 a ⊙ x is the "
            "same product written elementwise"),
    # --------------------------------------------------------- symmetric ---
    Row("tr_AS", "A: N x N; S: N x N symmetric", "trace(A @ S)", "S", "(A + A.T) / 2",
        "symmetric-gradient convention (see the module docstring)",
        why="the Cookbook's §2.8.2 gives A + Aᵀ − (A ∘ I) in its own convention"),
    Row("logdet_S", "S: N x N spd", "logdet(S)", "S", "inv(S)",
        f"{COOKBOOK} (eq. 57) with S = Sᵀ"),
    Row("det_S", "S: N x N spd", "det(S)", "S", "det(S) * inv(S)",
        f"{COOKBOOK} (eq. 49) with S = Sᵀ"),
    Row("xSx_S", "x: N; S: N x N symmetric", "x @ S @ x", "S", "outer(x, x)",
        f"{COOKBOOK} (eq. 72) with S = Sᵀ (xxᵀ is already symmetric)"),
    Row("tr_S2", "S: N x N symmetric", "trace(S @ S)", "S", "2 * S",
        f"{COOKBOOK} (eq. 107) with S = Sᵀ"),
    Row("tr_invS_A", "A: N x N; S: N x N spd", "trace(inv(S) @ A)", "S",
        "-inv(S) @ (A + A.T) @ inv(S) / 2",
        f"{COOKBOOK} (eq. 124) with S = Sᵀ, symmetric part"),
]

assert len({r.id for r in ROWS}) == len(ROWS), "row ids must be unique"


def _marks(row: Row, structural: bool):
    if row.missing:
        return [pytest.mark.xfail(strict=True, reason=f"not implemented yet: {row.missing}")]
    if structural and row.simplifier:
        return [pytest.mark.xfail(strict=True, reason=f"simplifier: {row.simplifier}")]
    return []


def _params(structural: bool = False):
    return [pytest.param(r, id=r.id, marks=_marks(r, structural)) for r in ROWS]


def test_the_table_is_large_enough():
    assert len(ROWS) >= 45
    assert sum("Cookbook" in r.source for r in ROWS) >= 30
    assert sum(MC_ORG in r.source for r in ROWS) >= 8


# ------------------------------------------------------- the reference ---

@dataclass
class Reference:
    problem: object
    module: object
    dims: dict
    values: dict
    fd: np.ndarray          # central differences of f by wrt (the symmetric G for S)


def _symmetric(problem, name) -> bool:
    return bool(problem.variables[name].structure)


@functools.lru_cache(maxsize=None)
def reference(row: Row, seed: int = 0) -> Reference:
    """Random inputs in the function's domain and the finite-difference
    gradient there, computed from the function alone."""
    p = row.problem()
    module = matcalc.compile(p)
    dims = verify.sizes(p, dict(row.dims))
    values = verify.draw(p, dims, np.random.default_rng(seed))
    order = list(p.variables)

    def f(point):
        return float(module.forward(*(point[n] for n in order))[0])

    symmetric = _symmetric(p, row.wrt)
    fd = verify.finite_differences(f, values, row.wrt, 1e-6, symmetric=symmetric)
    if symmetric:  # entry (i, j) off the diagonal estimates G_ij + G_ji = 2 G_ij
        fd = fd / (2 - np.eye(len(fd)))
    return Reference(p, module, dims, values, fd)


def _value_of(p, text: str, values: dict):
    """The value of an expression over p's names at `values` (matcalc's own
    evaluator: the generated forward of a problem whose function it is)."""
    decls = "\n".join(f"{n}: {' x '.join(map(str, v.shape)) or 'scalar'}"
                      for n, v in p.variables.items())
    q = matcalc.parse(f"{decls}\ng = {text}")
    return matcalc.compile(q).forward(*(values[n] for n in p.variables))[0]


# ------------------------------------------------------------ the tests ---

@pytest.mark.parametrize("row", _params())
def test_numeric(row):
    """matcalc's gradient against central differences, two seeds."""
    p = row.problem()
    for seed in (0, 1):
        result = matcalc.check(p, seed=seed, dims=dict(row.dims) or None)
        assert result.ok, f"{row.id} (seed {seed}):\n{result}"


@pytest.mark.parametrize("row", _params())
def test_expected_formula_is_right(row):
    """The table's formula (and every accepted alternative) against central
    differences, so a structural pass means a right gradient."""
    ref = reference(row)
    for text in (row.expected, *row.also):
        value = _value_of(ref.problem, text, ref.values)
        assert close_to(value, ref.fd), f"{row.id}: {text} is not the gradient"


@pytest.mark.parametrize("row", _params(structural=True))
def test_structural(row):
    """matcalc's simplified gradient is the textbook's form, node for node."""
    p = row.problem()
    got = matcalc.grad(p)[row.wrt]
    accepted = [canonical(p.expr(t)) for t in (row.expected, *row.also)]
    assert any(canonical(got) is e for e in accepted), (
        f"{row.id}: matcalc gives {got}, the textbook {row.expected}"
        + "".join(f" or {t}" for t in row.also))


# ---------------------------------------------------------------- SymPy ---

OK, WRONG, FAILS = "sympy ok", "sympy wrong", "sympy fails"


def sympy_outcome(row: Row) -> tuple[str, str]:
    """SymPy's `.diff` of the row's function (via `to_sympy`), evaluated and
    compared with central differences: (outcome, detail)."""
    ref = reference(row)
    p = ref.problem
    try:
        f = to_sympy(p.output)
    except matcalc.MatcalcError as err:
        return FAILS, f"not representable: {err}"
    x = to_sympy(p.variables[row.wrt])
    try:
        d = f.diff(x)
    except Exception as err:  # noqa: BLE001 - SymPy raises all kinds
        return FAILS, f"exception in diff: {type(err).__name__}: {str(err)[:80]}"
    dims = {p.dims[k]: v for k, v in ref.dims.items()}
    try:
        value = np.asarray(evaluate(d, ref.values, dims), dtype=float)
    except Unevaluated as err:
        return FAILS, f"unevaluated: {str(err)[:80]}"
    except Exception as err:  # noqa: BLE001
        return FAILS, f"cannot evaluate its answer: {type(err).__name__}: {str(err)[:60]}"
    if value.size != ref.fd.size:
        return WRONG, f"shape {value.shape}, expected {ref.fd.shape}: {str(d)[:60]}"
    if _symmetric(p, row.wrt):  # SymPy knows no symmetric MatrixSymbol
        value = value.reshape(ref.fd.shape)
        value = (value + value.T) / 2
    if not close_to(value, ref.fd):
        return WRONG, str(d)[:80]
    return OK, str(d)[:80]


def test_sympy_on_the_table():
    """SymPy 1.14's MatrixSymbol.diff on every row, against finite differences;
    matcalc must be right on every row."""
    outcomes = {}
    for row in ROWS:
        if row.missing:
            continue
        ref = reference(row)
        cache = ref.module.forward(*(ref.values[n] for n in ref.problem.variables))[1]
        grads = dict(zip(ref.problem.wrt, ref.module.backward(cache)))
        assert close_to(grads[row.wrt], ref.fd), f"matcalc is wrong on {row.id}"
        outcomes[row.id] = sympy_outcome(row)
    width = max(map(len, outcomes))
    print(f"\nSymPy {sympy.__version__} on the identity table (matcalc right on all "
          f"{len(outcomes)} rows):")
    for rid, (outcome, detail) in outcomes.items():
        print(f"  {rid:<{width}}  {outcome:<11}  {detail}")
    counts = {k: sum(o == k for o, _ in outcomes.values()) for k in (OK, WRONG, FAILS)}
    print("  " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    assert outcomes["log_det_X"][0] == WRONG, outcomes["log_det_X"]
    assert counts[WRONG] + counts[FAILS] > 0
