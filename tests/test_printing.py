"""Text and LaTeX printing: golden strings, the text round trip, LaTeX hygiene."""

from __future__ import annotations

import dataclasses
import re

import pytest

import matcalc
from matcalc.ir.expr import Apply, postorder
from matcalc.frontend.parser import parse_expr
from matcalc.targets.latex import symbol, to_latex
from matcalc.targets.text import to_text
from matcalc.targets.unicode import gradient_unicode

from conftest import AFFINE_SOURCE, EXAMPLES, scope_of

# ------------------------------------------------------------ golden strings ---

MLP_TEXT = """\
# gradient of loss = sum((relu(Z1) @ W2 + b2 - T)**2) / N
Z1 = X @ W1 + b1
t0 = relu(Z1)
t1 = t0 @ W2 + b2 - T
δt1 = 2 / N * t1
δZ1 = (δt1 @ W2.T) * step(Z1)
∂loss/∂W1 = X.T @ δZ1
∂loss/∂b1 = sum(δZ1, axis=0)
∂loss/∂W2 = t0.T @ δt1
∂loss/∂b2 = sum(δt1, axis=0)"""

MLP_LATEX = r"""\begin{aligned}
Z_{1} &= X W_{1} + \mathbf{1} b_{1}^\top \\
t_{0} &= \operatorname{relu}\left(Z_{1}\right) \\
t_{1} &= t_{0} W_{2} + \mathbf{1} b_{2}^\top - T \\
\delta_{t_{1}} &= \frac{2}{N} t_{1} \\
\delta_{Z_{1}} &= \left(\delta_{t_{1}} W_{2}^\top\right) \odot \mathbf{1}\left[Z_{1} > 0\right] \\
\frac{\partial \mathrm{loss}}{\partial W_{1}} &= X^\top \delta_{Z_{1}} \\
\frac{\partial \mathrm{loss}}{\partial b_{1}} &= \mathbf{1}^\top \delta_{Z_{1}} \\
\frac{\partial \mathrm{loss}}{\partial W_{2}} &= t_{0}^\top \delta_{t_{1}} \\
\frac{\partial \mathrm{loss}}{\partial b_{2}} &= \mathbf{1}^\top \delta_{t_{1}}
\end{aligned}"""

AFFINE_TEXT = """\
# gradient of S = X @ W + b, given δS = ∂L/∂S
∂L/∂X = δS @ W.T
∂L/∂W = X.T @ δS
∂L/∂b = sum(δS, axis=0)"""

AFFINE_LATEX = r"""\begin{aligned}
&\text{given } \delta_{S} = \frac{\partial L}{\partial S} \\
\frac{\partial L}{\partial X} &= \delta_{S} W^\top \\
\frac{\partial L}{\partial W} &= X^\top \delta_{S} \\
\frac{\partial L}{\partial b} &= \mathbf{1}^\top \delta_{S}
\end{aligned}"""


def test_mlp_text(mlp_problem):
    assert str(matcalc.grad(mlp_problem)) == MLP_TEXT


def test_mlp_latex(mlp_problem):
    assert matcalc.grad(mlp_problem).latex() == MLP_LATEX


def test_affine_text(affine_problem):
    assert str(matcalc.grad(affine_problem)) == AFFINE_TEXT


def test_affine_latex(affine_problem):
    assert matcalc.grad(affine_problem).latex() == AFFINE_LATEX


def test_mlp_gradient_expressions(mlp_problem):
    g = matcalc.grad(mlp_problem)
    assert list(g.exprs) == ["W1", "b1", "W2", "b2"]
    for name, e in g.exprs.items():
        assert e.shape == mlp_problem.variables[name].shape
    assert to_text(g["b2"]).startswith("sum(2 / N * (")
    assert to_text(g["b2"]).endswith(", axis=0)")


def test_problem_text_round_trips(mlp_problem):
    text = str(mlp_problem)
    assert text.splitlines()[:2] == ["X: N x D", "T: N x O"]
    assert text.splitlines()[-1] == "wrt W1, b1, W2, b2"
    again = matcalc.parse(text)
    assert again.output is mlp_problem.output
    assert again.wrt == mlp_problem.wrt
    assert str(again) == text


LATEX_CASES = {
    "X @ W1 + b1": r"X W_{1} + \mathbf{1} b_{1}^\top",
    "X.T": r"X^\top",
    "inv(A).T": r"A^{-\top}",
    "inv(A)": r"A^{-1}",
    "X * X": r"X^{\circ 2}",          # equal factors are a power
    "X ** 2": r"X^{\circ 2}",
    "sum(X, axis=0)": r"\mathbf{1}^\top X",
    "sum(X, axis=1)": r"X \mathbf{1}",
    "sum(X)": r"\operatorname{sum}\left(X\right)",
    "x @ x": r"x^\top x",
    # a vector is a column: x @ A is Aᵀ x; on the left of a product it is a row
    "x @ A": r"A^\top x",
    "A @ x": r"A x",
    "x @ A.T": r"A x",
    "x @ inv(A)": r"A^{-\top} x",
    "x @ A @ x": r"x^\top A x",
    "x @ A @ A": r"A^\top A^\top x",
    "x @ A @ A @ x": r"x^\top A A x",
    "X / N": r"\frac{1}{N} X",
    # a column scales a matrix's rows, diag(x) A; a vector its columns, A diag(v)
    "A * x[:, None]": r"\operatorname{diag}\left(x\right) A",
    "X * sum(X, axis=0)": r"X \operatorname{diag}\left(\mathbf{1}^\top X\right)",
    "x[:, None] * b1": r"x b_{1}^\top",
    "x[:, None] * A * A * x":
        r"\operatorname{diag}\left(x\right) A^{\circ 2} \operatorname{diag}\left(x\right)",
    # a power of a fraction is bracketed; a chain of quotients is one fraction
    "(x / sum(x)) ** 2": r"\left(\frac{x}{\operatorname{sum}\left(x\right)}\right)^{\circ 2}",
    "x / sum(x) / trace(A)": r"\frac{x}{\operatorname{sum}\left(x\right) \operatorname{tr}\left(A\right)}",
    "1 / (2 * x) / sum(x)": r"\frac{1}{2 \operatorname{sum}\left(x\right) x}",
    "x / exp(x) / x": r"\frac{x}{\exp\left(x\right) \odot x}",
    "trace(A)": r"\operatorname{tr}\left(A\right)",
    "logdet(A)": r"\log\det\left(A\right)",
    "det(A)": r"\det\left(A\right)",
    "sqrt(x)": r"\sqrt{x}",
    "abs(x)": r"\left|x\right|",
    "eye(N)": r"I_{N}",
    "ones(N, D)": r"\mathbf{1}_{N \times D}",
    "zeros(D)": r"\mathbf{0}_{D}",
}


@pytest.mark.parametrize("text, latex", LATEX_CASES.items(), ids=list(LATEX_CASES))
def test_latex_of_expressions(text, latex):
    p = matcalc.parse("X: N x D\nW1: D x H\nb1: H\nx: N\nA: N x N\nf = sum(X)\n")
    assert to_latex(parse_expr(text, scope_of(p))) == latex


@pytest.mark.parametrize("name, latex", [
    ("W1", "W_{1}"),
    ("W_1", "W_{1}"),
    ("b12", "b_{12}"),
    ("X", "X"),
    ("alpha", r"\alpha"),
    ("Sigma", r"\Sigma"),
    ("loss", r"\mathrm{loss}"),
    ("x_hat", r"x_{\mathrm{hat}}"),
    ("t0", "t_{0}"),
])
def test_latex_symbols(name, latex):
    assert symbol(name) == latex


def test_latex_variable_names_in_gradient():
    p = matcalc.parse("W1: D x H\nalpha: scalar\nx_hat: D\nf = alpha * sum((x_hat @ W1) ** 2)\n")
    latex = matcalc.grad(p).latex()
    assert r"\partial W_{1}}" in latex
    assert r"\partial \alpha}" in latex
    assert r"\partial x_{\mathrm{hat}}}" in latex
    assert "W1" not in latex and "x_hat" not in latex


def test_jupyter_reprs(mlp_problem, affine_problem):
    for p in (mlp_problem, affine_problem):
        g = matcalc.grad(p)
        assert g._repr_latex_() == f"$${g.latex()}$$"
        rp = p._repr_latex_()
        assert rp.startswith("$$\\begin{aligned}\n") and rp.endswith("\n\\end{aligned}$$")
        assert_balanced(rp)
    assert r"Z_{1} &= X W_{1} + \mathbf{1} b_{1}^\top" in mlp_problem._repr_latex_()
    assert affine_problem._repr_latex_() == (
        "$$\\begin{aligned}\nS &= X W + \\mathbf{1} b^\\top\n\\end{aligned}$$")
    x = mlp_problem.variables["W1"]
    assert x._repr_latex_() == "$W_{1}$"


# ----------------------------------------------------------- the round trip ---

TRICKY = [
    "-X", "-(X + Y)", "-(-X)", "X - -Y", "2/N * X", "X * 2 / N", "X / N", "-X / N",
    "X / (N * D)", "X / N / D", "N * X", "N ** 2 * X", "D * X / N", "X * N / D ** 2",
    "1/3 * X - X", "2 * X / 3", "X / 3", "0.5 * X", "1.5e-3 * X", "1e20 * X", "-0.25 * X",
    "X ** 2", "X ** -1", "X ** 0.5", "X ** (1/3)", "(-X) ** 2", "-X ** 2", "X ** 2 ** c",
    "(X ** 2) ** c", "2 ** X", "c ** 2", "c ** -c", "2 ** -c", "X ** N", "X ** (2/N)",
    "X.T.T", "X.T.T.T", "(X.T @ Y).T", "(X.T.T @ W).T.T.T", "X'", "X''",
    "sum(X, axis=0)", "sum(X, axis=1)", "sum(X, axis=-1)", "sum(X, axis=None)",
    "sum(sum(X, axis=0))", "mean(X, axis=0)", "mean(X, axis=1)", "mean(X)", "mean(x)",
    "x[:, None]", "x[None, :]", "x[:, None].T", "X * x[:, None]", "X + x[:, None] * 2",
    "x[:, None] @ y[None, :]", "(X @ W) * 2", "X @ W * 2", "X * Y @ W", "(X * Y) @ W",
    "X @ (W * 2)", "A @ (B @ A)", "(A @ B) @ A", "A - (B - A)", "x / (y / x)",
    "(x / y) / x", "x / y * x", "x * (y / x)", "1 / x", "-1 / x", "c / x", "-c",
    "-(c * x)", "-X @ W", "-(X @ W)", "X @ -W", "(X - Y) ** 2 / N", "sum(X ** 2) / N",
    "sum(-X)", "exp(-x)", "-exp(x)", "log(x) ** 2", "sum(x) ** 2", "x @ A @ y",
    "inv(A) @ x", "inv(A).T", "det(A) * A", "logdet(A) / N", "trace(A @ B)",
    "outer(x, y)", "outer(x, x) @ A", "relu(X) - step(X)", "sign(x) * abs(x)",
    "sigmoid(X) + softplus(X) + tanh(X)", "log1p(x) - sqrt(x)", "cos(X) * sin(X)",
    "eye(N) * 2", "ones(N, D)", "zeros(D)", "c * X + b", "b + X", "c - X", "1 - X",
    "2 - 2 * X", "(c + 1) * X", "sum(X) + N", "sum(X) - 2/N", "sum(X) + N * D",
    "X + X / N", "X - X / D", "(N + 1) * X", "x ** (N + 1)",
]

TRICKY_DECLS = ("X: N x D\nY: N x D\nW: D x H\nA: N x N\nB: N x N\nx: N\ny: N\nb: D\n"
                "c: scalar\nf = sum(X)\n")


@pytest.fixture(scope="module")
def tricky_scope():
    return scope_of(matcalc.parse(TRICKY_DECLS))


def assert_round_trip(node, scope):
    text = to_text(node)
    back = parse_expr(text, scope)
    assert back is node, f"{text!r} parses back as {to_text(back)!r}"
    return text


@pytest.mark.parametrize("expr", TRICKY)
def test_round_trip_tricky(expr, tricky_scope):
    assert_round_trip(parse_expr(expr, tricky_scope), tricky_scope)


def _example_problems():
    out = [("affine", AFFINE_SOURCE)]
    out += [(p.stem, p.read_text("utf-8")) for p in sorted(EXAMPLES.glob("*.mc"))]
    out += [
        ("inline-1", "X: N x D\nw: D\ny: N\nlam: scalar\n"
                     "f = mean((X @ w - y) ** 2) + lam * sum(w ** 2)\n"),
        ("inline-2", "A: N x N\nx: N\nf = x @ inv(A) @ x + logdet(A) - 2 * trace(A) / N\n"),
        ("inline-3", "X: N x D\nv: N\nf = sum(sigmoid(X - v[:, None]) ** 3, axis=1)\n"),
        ("inline-4", "x: N\ny: D\nM: N x D\nc: scalar\n"
                     "f = sum(outer(x, y) * M - c * x[:, None] * y[None, :]) / (N * D)\n"),
    ]
    return out


EXAMPLE_PROBLEMS = _example_problems()
EXAMPLE_IDS = [name for name, _ in EXAMPLE_PROBLEMS]


@pytest.mark.parametrize("name, source", EXAMPLE_PROBLEMS, ids=EXAMPLE_IDS)
def test_round_trip_gradients(name, source):
    p = matcalc.parse(source)
    g = matcalc.grad(p)
    scope = scope_of(p, g)
    roots = [p.output, *p.intermediates.values(), *g.exprs.values()]
    count = 0
    for root in roots:
        for node in postorder([root]):
            if isinstance(node, Apply):
                assert_round_trip(node, scope)
                count += 1
    assert count > 0


# ------------------------------------------------------------ LaTeX hygiene ---

def assert_balanced(latex: str):
    unescaped = re.sub(r"\\[{}]", "", latex)
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, f"'}}' without '{{' in {latex!r}"
    assert depth == 0, f"unbalanced braces in {latex!r}"
    lefts = re.findall(r"\\left(?![a-zA-Z])", latex)
    rights = re.findall(r"\\right(?![a-zA-Z])", latex)
    assert len(lefts) == len(rights), f"\\left/\\right unbalanced in {latex!r}"
    # \left must close before any enclosing group does: check per line nesting
    stack = []
    for token in re.findall(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])", latex):
        if token.startswith("\\left"):
            stack.append(token)
        else:
            assert stack, f"\\right before \\left in {latex!r}"
            stack.pop()
    assert latex.count(r"\begin{") == latex.count(r"\end{")


@pytest.mark.parametrize("expr", TRICKY)
def test_latex_balanced_tricky(expr, tricky_scope):
    assert_balanced(to_latex(parse_expr(expr, tricky_scope)))


@pytest.mark.parametrize("name, source", EXAMPLE_PROBLEMS, ids=EXAMPLE_IDS)
def test_latex_balanced_gradients(name, source):
    p = matcalc.parse(source)
    g = matcalc.grad(p)
    assert_balanced(g.latex())
    assert_balanced(p._repr_latex_())
    for e in g.exprs.values():
        assert_balanced(to_latex(e))


def test_deep_expression_prints_without_recursion_error():
    depth = 3000
    scope = scope_of(matcalc.parse("x: N\nf = sum(x)\n"))
    node = scope["x"]
    from matcalc import ops
    for _ in range(depth):
        node = ops.func("tanh", node)
    text = to_text(node)
    assert text.count("tanh(") == depth
    assert_balanced(to_latex(node))


def test_problem_text_keeps_symmetric_structure():
    p = matcalc.parse("S: D x D symmetric\nA: D x D\nf = trace(A @ S)\nwrt S")
    assert "S: D x D symmetric" in str(p)
    again = matcalc.parse(str(p))
    assert matcalc.grad(again)["S"] is matcalc.grad(p)["S"]


# --------------------------------------- the function as written, notation ---

RIDGE = ("X: N x D\nW: D x O\nY: N x O\nlam: scalar\nx: D\nS: D x D symmetric\n"
         "f = mean((X @ W - Y)**2) + lam * (x @ S @ x)\n")


def test_headers_print_the_function_as_written():
    """mean stays mean, x @ S @ x keeps its order (the built graph holds
    sum(...) / (N * O) and S @ x @ x), in text, Unicode and LaTeX."""
    from matcalc.targets.unicode import gradient_unicode, problem_unicode
    p = matcalc.parse(RIDGE)
    g = matcalc.grad(p)
    assert str(g).splitlines()[0] == \
        "# gradient of f = mean((X @ W - Y)**2) + lam * (x @ S @ x)"
    assert gradient_unicode(g).splitlines()[0] == \
        "# gradient of f = mean((X·W - Y)²) + lam·(x·S·x)"
    assert str(g.steps).splitlines()[0].endswith("f = mean((X @ W - Y)**2) + lam * (x @ S @ x)")
    assert str(matcalc.hessian(p, "x")).splitlines()[0] == \
        "# Hessian of f = mean((X @ W - Y)**2) + lam * (x @ S @ x)"
    assert r"\operatorname{mean}" in p._repr_latex_() and r"x^\top S x" in p._repr_latex_()
    assert "mean((X·W - Y)²)" in problem_unicode(p)
    assert repr(p).startswith("<Problem f = mean((X @ W - Y)**2)")


def test_the_written_function_drops_comments_and_line_breaks():
    p = matcalc.parse("x: N  # a vector\nf = sum(  # the sum\n    exp(x)\n  ) / N\n")
    assert p.written == {"f": "sum( exp(x) ) / N"}
    assert str(matcalc.grad(p)).splitlines()[0] == "# gradient of f = sum( exp(x) ) / N"


def test_a_problem_without_text_prints_its_built_form():
    p = matcalc.parse("x: N\nf = mean(x)\n")
    bare = dataclasses.replace(p, written={})
    assert str(matcalc.grad(bare)).splitlines()[0] == "# gradient of f = sum(x) / N"


def test_one_notation_for_adjoints_and_gradients():
    """δv is the adjoint of an intermediate, ∂f/∂W a gradient, in text and
    Unicode; the generated code keeps dv and dW, its comments say dv = ∂f/∂v."""
    p = matcalc.parse((EXAMPLES / "mlp.mc").read_text("utf-8"))
    text = str(matcalc.grad(p)).splitlines()
    for line in ("δt1 = 2 / N * t1", "δZ1 = (δt1 @ W2.T) * step(Z1)", "∂loss/∂W1 = X.T @ δZ1"):
        assert line in text
    assert not any(line.startswith(("dt1", "dZ1", "dW1")) for line in text)
    source = matcalc.codegen(p)
    assert "    dW1 = X.T @ dZ1\n" in source and "# dZ1 = ∂loss/∂Z1" in source
    assert "δ" not in source


def test_second_order_index_letters_avoid_the_problems_names():
    """A Kronecker layout comment with dimensions named i, j, m, n."""
    p = matcalc.parse("A: i x j\nB: j x m\nS = A @ B\n")
    layout = str(matcalc.jacobian(p, "B")).splitlines()[1]
    assert layout == "# J_B: vec stacks columns: J_B[n + i·k, l + j·p] = ∂S[n, k]/∂B[l, p]"
    assert str(matcalc.jacobian(matcalc.parse("A: N x D\nB: D x K\nS = A @ B\n"), "B")) \
        .splitlines()[1] == "# J_B: vec stacks columns: J_B[i + N·j, m + D·n] = ∂S[i, j]/∂B[m, n]"


def test_hvp_comment_names_the_problems_variables():
    p = matcalc.parse((EXAMPLES / "mlp.mc").read_text("utf-8"))
    lines = str(matcalc.hvp(p)).splitlines()
    assert lines[1] == ("# Hv_W1 = ∂²loss/∂W1²[v_W1] + ∂²loss/∂W1∂b1[v_b1] "
                        "+ ∂²loss/∂W1∂W2[v_W2] + ∂²loss/∂W1∂b2[v_b2]")
    assert "(H v)" not in "\n".join(lines) and r"\left(H " not in matcalc.hvp(p).latex()


def test_latex_column_layout_writes_its_broadcast():
    """Y = W X + b 1ᵀ in column layout, as the row layout writes 1 bᵀ."""
    g = matcalc.grad(matcalc.parse((EXAMPLES / "column_layout.mc").read_text("utf-8")))
    lines = g.latex().splitlines()
    assert r"Y &= W X + b \mathbf{1}^\top \\" in lines
    assert r"\frac{\partial L}{\partial b} &= Y \mathbf{1}" in lines
    rows = matcalc.grad(matcalc.problem("sum((X + b[None, :]) ** 2)", X="N x D", b="D"))
    assert r"X + \mathbf{1} b^\top" in rows.latex()


def test_a_constant_over_a_broadcast_divisor_cancels():
    """The gradient of Σ‖row‖ is X / ‖row‖ (was 2 * (1 / 2 / t0)[:, None] * X)."""
    g = matcalc.grad(matcalc.problem("sum(norm(X, axis=1))", X="N x D"))
    assert str(g).splitlines()[-1] == "∂f/∂X = X / t0[:, None]"


def test_a_coefficient_of_a_quotient_by_a_scalar_joins_its_divisor():
    """(a / f) / 2 prints a / (2 f), and 1 / (2 f) is no line of its own:
    the Mahalanobis distance's gradients, Cookbook M r / f and r rᵀ / (2 f)."""
    p = matcalc.problem("sqrt(r @ M @ r)", r="N", M="N x N spd")
    g = matcalc.grad(p)
    assert str(g).splitlines()[-2:] == ["∂f/∂r = t0 / f", "∂f/∂M = outer(r, r) / (2 * f)"]
    assert g.latex().splitlines()[-2] == r"\frac{\partial f}{\partial M} &= \frac{r r^\top}{2 f}"
    assert "dM = np.outer(r / (2 * f), r)" in matcalc.codegen(p)  # the scale on a vector


def test_a_fraction_over_a_divisor_is_one_fraction():
    """(1/2) / f prints 1 / (2 * f), as the LaTeX \\frac{1}{2 f} reads (was
    1 / 2 / f); the code keeps one division of the array by 0.5's inverse."""
    p = matcalc.problem("sqrt(a) + sum(sqrt(x))", a="scalar positive", x="N positive")
    g = matcalc.grad(p)
    assert str(g).splitlines()[-2:] == ["∂f/∂a = 1 / (2 * t0)", "∂f/∂x = 1 / (2 * t1)"]
    assert g.latex().splitlines()[-3] == r"\frac{\partial f}{\partial a} &= \frac{1}{2 t_{0}} \\"
    assert "∂f/∂x = 1/(2·t₁)" in gradient_unicode(g)
    assert "dx = 1 / 2 / t1" in matcalc.codegen(p)


def test_a_scalar_broadcast_over_a_quotient_is_the_scalar():
    """(s 1) / b = s / b for b of the full shape: the pseudo-Huber loss's
    δt1 = (t0 / t2) * t1 (was (ones(N) * t0 / t2) * t1, an N-vector of t0);
    1 / det(X) by X is -X⁻ᵀ / det(X) (was -(t0 X⁻ᵀ / t0²))."""
    p = matcalc.problem("sum(delta ** 2 * (sqrt(1 + ((X @ w - y) / delta) ** 2) - 1))",
                        X="N x D", y="N", w="D", delta="scalar positive", wrt="w, delta")
    assert "δt1 = (t0 / t2) * t1" in str(matcalc.grad(p)) and matcalc.check(p).ok
    q = matcalc.problem("1 / det(X)", X="N x N")
    assert str(matcalc.grad(q)).splitlines()[-1] == "∂f/∂X = -(inv(X).T / t0)"
    assert matcalc.check(q).ok


def test_log_cosh_has_the_tanh_gradient():
    """sinh(x) / cosh(x) = tanh(x): the log-cosh loss's gradient is Xᵀ tanh(r)
    (was sinh(t0) / cosh(t0), which overflows to nan past |r| = 710)."""
    p = matcalc.problem("sum(log(cosh(X @ w - y)))", X="N x D", y="N", w="D", wrt="w")
    assert str(matcalc.grad(p)).splitlines()[-1] == "∂f/∂w = X.T @ tanh(t0)"
    assert matcalc.check(p).ok
