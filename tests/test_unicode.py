"""The Unicode printer (matcalc.targets.unicode): golden strings for the
examples, one test per notation, names, and every example printing."""

from __future__ import annotations

import pytest

import matcalc
from matcalc.targets.unicode import (UnicodePrinter, gradient_unicode, name,
                                      problem_unicode, program_unicode, to_unicode)
from matcalc.targets.text import TextPrinter

from conftest import EXAMPLES

MLP_UNICODE = """\
# gradient of loss = ∑(relu(Z₁)·W₂ + b₂ - T)²/N
Z₁ = X·W₁ + b₁
t₀ = relu(Z₁)
t₁ = t₀·W₂ + b₂ - T
δt₁ = 2/N·t₁
δZ₁ = (δt₁·W₂ᵀ) ⊙ 𝟙[Z₁ > 0]
∂loss/∂W₁ = Xᵀ·δZ₁
∂loss/∂b₁ = ∑₀δZ₁
∂loss/∂W₂ = t₀ᵀ·δt₁
∂loss/∂b₂ = ∑₀δt₁"""

AFFINE_UNICODE = """\
# gradient of S = X·W + b, given δS = ∂L/∂S
∂L/∂X = δS·Wᵀ
∂L/∂W = Xᵀ·δS
∂L/∂b = ∑₀δS"""

SIGMOID_CHAIN_UNICODE = """\
# gradient of C₀ = (a₃ - y)²
z₁ = w₁·x + b₁
a₁ = σ(z₁)
z₂ = w₂·a₁ + b₂
a₂ = σ(z₂)
z₃ = w₃·a₂ + b₃
a₃ = σ(z₃)
t₀ = a₃ - y
δz₃ = 2·t₀·a₃·(1 - a₃)
δz₂ = δz₃·w₃·a₂·(1 - a₂)
δz₁ = δz₂·w₂·a₁·(1 - a₁)
∂C₀/∂w₁ = δz₁·x
∂C₀/∂b₁ = δz₁
∂C₀/∂w₂ = δz₂·a₁
∂C₀/∂b₂ = δz₂
∂C₀/∂w₃ = δz₃·a₂
∂C₀/∂b₃ = δz₃"""

SEED004_UNICODE = """\
# gradient of loss = ∑(y - pred)²
h = X·W₁ + b₁
h_relu = relu(h)
pred = h_relu·W₂ + b₂
t₀ = y - pred
δpred = -2·t₀
δh = (δpred·W₂ᵀ) ⊙ 𝟙[h > 0]
∂loss/∂W₁ = Xᵀ·δh
∂loss/∂b₁ = ∑₀δh
∂loss/∂W₂ = h_reluᵀ·δpred
∂loss/∂b₂ = ∑₀δpred"""

LINALG_UNICODE = """\
# gradient of nll = N/2·log det(S) + N/2·tr(S⁻¹·C) + lam·tr(S) + μ·det(S)
t₀ = S⁻¹
C = (Xᵀ·X)/N
t₁ = μ·det(S)
∂nll/∂S = (N/2 + t₁)·t₀ᵀ + lam·I - N/2·(t₀ᵀ·C·t₀ᵀ)"""


def grad_of(filename: str):
    return matcalc.grad(matcalc.parse((EXAMPLES / filename).read_text("utf-8")))


# ------------------------------------------------------------ golden strings ---

def test_mlp(mlp_problem):
    g = matcalc.grad(mlp_problem)
    assert program_unicode(g.program, g.problem) == MLP_UNICODE
    assert gradient_unicode(g) == MLP_UNICODE


def test_affine_array_valued(affine_problem):
    assert gradient_unicode(matcalc.grad(affine_problem)) == AFFINE_UNICODE


def test_affine_example_file():
    assert gradient_unicode(grad_of("affine.mc")) == AFFINE_UNICODE


def test_sigmoid_chain():
    assert gradient_unicode(grad_of("sigmoid_chain.mc")) == SIGMOID_CHAIN_UNICODE


def test_seed004():
    assert gradient_unicode(grad_of("seed004.mc")) == SEED004_UNICODE


def test_linalg():
    assert gradient_unicode(grad_of("linalg.mc")) == LINALG_UNICODE


def test_column_layout_row_sums_and_column_bias():
    text = gradient_unicode(grad_of("column_layout.mc"))
    assert "Y = W·X + b" in text
    assert "∂L/∂b = ∑₁Y" in text


def test_problem_unicode(mlp_problem):
    assert problem_unicode(mlp_problem) == """\
X: N × D
T: N × O
W₁: D × H
b₁: H
W₂: H × O
b₂: O
Z₁ = X·W₁ + b₁
loss = ∑(relu(Z₁)·W₂ + b₂ - T)²/N
wrt W₁, b₁, W₂, b₂"""


def test_problem_unicode_bare_expression_and_structure():
    p = matcalc.parse("S: D x D symmetric\nx: D\ntrace(S) + x @ x")
    assert problem_unicode(p) == "S: D × D symmetric\nx: D\nf = tr(S) + x·x\nwrt S, x"


# ------------------------------------------------------------------ notation ---

P = matcalc.parse("""
A: N x N
B: N x N
x: N
y: N
alpha: scalar
p: scalar
W1: N x N
f = sum(x)
""")


@pytest.mark.parametrize("text, expected", [
    ("A @ B", "A·B"),
    ("A.T", "Aᵀ"),
    ("(A @ B).T", "(A·B)ᵀ"),
    ("inv(A)", "A⁻¹"),
    ("inv(A).T", "A⁻ᵀ"),
    ("inv(A @ B)", "(A·B)⁻¹"),
    ("A * B", "A ⊙ B"),
    ("(A * B) @ B", "(A ⊙ B)·B"),
    ("(A @ B) * B", "(A·B) ⊙ B"),
    ("A @ B / B", "(A·B) / B"),
    ("A / B", "A / B"),
    ("x / 2", "x/2"),
    ("2 * x / N", "2/N·x"),
    ("alpha * p * A * B", "α·p·A ⊙ B"),
    ("A ** 2", "A²"),
    ("A ** -2", "A⁻²"),
    ("A ** 0.5", "A^0.5"),
    ("A ** (p + 1)", "A^(1 + p)"),
    ("A.T ** 2", "(Aᵀ)²"),
    ("-x ** 2", "-x²"),
    ("(-x) ** 2", "(-x)²"),
    ("square(x)", "x²"),
    ("sum(A)", "∑A"),
    ("sum(A, axis=0)", "∑₀A"),
    ("sum(A, axis=1)", "∑₁A"),
    ("sum(A * B)", "∑(A ⊙ B)"),
    ("sum(A ** 2)", "∑A²"),
    ("sum(A) ** 2", "(∑A)²"),
    ("sum(A) / N", "∑A/N"),
    ("sum(A) * B", "(∑A)·B"),
    ("mean(A, axis=1)", "∑₁A/N"),
    ("trace(A)", "tr(A)"),
    ("det(A)", "det(A)"),
    ("logdet(A)", "log det(A)"),
    ("step(x)", "𝟙[x > 0]"),
    ("step(x - y)", "𝟙[x - y > 0]"),
    ("sigmoid(x)", "σ(x)"),
    ("relu(x)", "relu(x)"),
    ("tanh(x)", "tanh(x)"),
    ("abs(x - y)", "|x - y|"),
    ("sqrt(x)", "√x"),
    ("sqrt(x + y)", "√(x + y)"),
    ("norm(x)", "‖x‖"),
    ("outer(x, y)", "x·yᵀ"),
    ("kron(A, B)", "A ⊗ B"),
    ("solve(A, B)", "A⁻¹·B"),
    ("x[:, None]", "x"),
    ("x[None, :]", "xᵀ"),
    ("maximum(x, y)", "max(x, y)"),
    ("softmax(A, axis=1)", "softmax(A, axis=1)"),
    ("W1 @ A", "W₁·A"),
    ("1 - x", "1 - x"),
])
def test_notation(text, expected):
    assert to_unicode(P.expr(text)) == expected


@pytest.mark.parametrize("raw, pretty", [
    ("W1", "W₁"), ("Z10", "Z₁₀"), ("x_2", "x₂"), ("dZ1", "dZ₁"), ("alpha", "α"),
    ("alpha1", "α₁"), ("Sigma", "Σ"), ("lam", "lam"), ("h_relu", "h_relu"),
    ("W1b", "W1b"), ("X", "X"),
])
def test_names(raw, pretty):
    assert name(raw) == pretty


def test_names_that_would_print_alike_keep_their_spelling():
    p = matcalc.parse("W1: N\nW_1: N\nf = sum(W1 * W_1)")
    assert to_unicode(p.output.args[0]) == "W1·W_1"
    g = matcalc.grad(p)
    text = gradient_unicode(g)
    assert "∂f/∂W1 = W_1" in text and "∂f/∂W_1 = W1" in text
    assert "W₁" not in text


def test_adjoint_of_a_greek_name():
    g = matcalc.grad(matcalc.parse("x: N\nalpha = exp(x)\nf = sum(alpha * alpha)\nwrt x"))
    assert "α" in gradient_unicode(g)


def test_symbols_override():
    assert to_unicode(P.expr("A @ x"), {"A": "𝐀"}) == "𝐀·x"


def test_the_printer_is_a_text_printer():
    assert issubclass(UnicodePrinter, TextPrinter)
    assert UnicodePrinter.language == "unicode"


# ------------------------------------------------------------ every example ---

ASCII_OPERATORS = ("@", ".T", "**", "step(", "sigmoid(", "sum(", "[:, None]", "inv(")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.mc")), ids=lambda p: p.stem)
def test_every_example_prints_without_ascii_operators(path):
    p = matcalc.parse(path.read_text("utf-8"))
    text = gradient_unicode(matcalc.grad(p))
    body = text.split("\n")
    assert len(body) >= 2
    for op in ASCII_OPERATORS:
        assert op not in text, (op, text)
    assert problem_unicode(p)


def test_deep_expressions_print():
    p = matcalc.parse("x: N\n" + "f = sum(" + "sin(" * 3000 + "x" + ")" * 3000 + ")")
    assert to_unicode(p.output.args[0]).count("sin(") == 3000
