"""Declared domains (`positive`, `sign`, `onehot`), the rewrite rules that
use them, and `check` on the user's own data (issue 12, section 4).

Every rule is checked numerically on inputs drawn from its domain: the
expression before and after the rule, evaluated at the same point, agree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.checks.against import check_against
from matcalc.ir.expr import const
from matcalc.ops import func, power, reduce_sum
from matcalc.targets.latex import problem_latex
from matcalc.targets.text import problem_text
from matcalc.targets.unicode import problem_unicode
from matcalc.passes.simplify import Simplifier
from matcalc.bridges.sympy import from_sympy, to_sympy
from matcalc.checks.verify import draw, evaluate, sizes

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CLI = [sys.executable, "-m", "matcalc.cli"]

DECLARED = """
Y: N x K onehot
u: K onehot
y: N sign
x: N positive
a: scalar positive
s: scalar sign
S: D x D symmetric positive
P: D x D spd positive
G: D x D symmetric sign
Z: N x K
f = sum(Y * Z) + sum(u) + sum(y * x) + a * s + sum(S) + logdet(P) + sum(G)
"""


def declared():
    return matcalc.parse(DECLARED)


def cli(*args, cwd=ROOT):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd)


# ---------------------------------------------------------------- language ---

def test_declarations_parse_print_and_parse_back():
    p = declared()
    assert {n: (v.structure, v.domain) for n, v in p.variables.items()} == {
        "Y": ("", "onehot"), "u": ("", "onehot"), "y": ("", "sign"), "x": ("", "positive"),
        "a": ("", "positive"), "s": ("", "sign"), "S": ("symmetric", "positive"),
        "P": ("spd", "positive"), "G": ("symmetric", "sign"), "Z": ("", "")}
    text = problem_text(p)
    assert "Y: N x K onehot" in text and "S: D x D symmetric positive" in text
    again = matcalc.parse(text)
    assert all(again.variables[n] is v for n, v in p.variables.items())
    assert "onehot" in problem_unicode(p)
    assert problem_latex(p)


def test_default_wrt_leaves_out_labels():
    """sign and onehot variables are data (labels): not differentiated by
    unless wrt names them."""
    assert declared().wrt == ("x", "a", "S", "P", "Z")
    only_labels = matcalc.parse("y: N sign\nf = sum(y ** 3)")
    assert only_labels.wrt == ("y",)


@pytest.mark.parametrize("decl, column, fragment", [
    ("a: scalar onehot", 11, "a onehot variable is a vector or a matrix"),
    ("S: D x D spd sign", 14, "cannot also be sign"),
    ("S: D x N symmetric", 10, "must be square"),
    ("x: positive", 4, "'positive' follows the shape: write x: N positive"),
    ("X: N x sign", 8, "'sign' follows the shape"),
])
def test_bad_domain_declarations(decl, column, fragment):
    with pytest.raises(matcalc.MatcalcError) as info:
        matcalc.parse(f"{decl}\nf = sum(x)")
    assert info.value.line == 1 and info.value.column == column
    assert fragment in info.value.message


def test_bad_domain_declaration_exits_2():
    out = cli("grad", "-e", "sum(x)", "-d", "x: N positive sign")
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_sympy_bridge_keeps_working_with_domains():
    p = declared()
    for text in ("Y.T @ Z", "y * x", "S @ P + G", "a * s"):
        e = p.expr(text)
        assert from_sympy(to_sympy(e), p.scope()) is not None


# ----------------------------------------------------------------- drawing ---

@pytest.mark.parametrize("seed", range(5))
def test_check_draws_inputs_in_their_declared_domains(seed):
    p = declared()
    values = draw(p, sizes(p), np.random.default_rng(seed))
    Y, u = values["Y"], values["u"]
    assert set(np.unique(Y)) <= {0.0, 1.0} and np.all(Y.sum(axis=1) == 1)
    assert set(np.unique(u)) <= {0.0, 1.0} and u.sum() == 1
    assert np.all(np.abs(values["y"]) == 1) and abs(values["s"]) == 1
    assert np.all(values["x"] > 0) and values["a"] > 0
    S, P, G = values["S"], values["P"], values["G"]
    assert np.all(S > 0) and np.array_equal(S, S.T)
    assert np.all(P > 0) and np.array_equal(P, P.T) and np.all(np.linalg.eigvalsh(P) > 0)
    assert np.all(np.abs(G) == 1) and np.array_equal(G, G.T)


# ------------------------------------------------------- rules, numerically ---

RULE_CASES = [
    # (declarations, expression, what the rule leaves)
    ("Y: N x K onehot", "sum(Y, axis=1)", "ones(N)"),
    ("Y: N x K onehot", "sum(-3 * Y, axis=1)", "-3 * ones(N)"),
    ("Y: N x K onehot", "sum(Y / N)", "1"),
    ("u: K onehot", "sum(2 * u)", "2"),
    ("Y: N x K onehot", "Y ** 3", "Y"),
    ("Y: N x K onehot", "abs(Y)", "Y"),
    ("Y: N x K onehot", "relu(Y)", "Y"),
    ("Y: N x K onehot", "step(Y)", "Y"),
    ("Y: N x K onehot", "sign(Y)", "Y"),
    ("y: N sign", "y ** 2", "ones(N)"),
    ("y: N sign", "y ** 4", "ones(N)"),
    ("y: N sign", "y ** 3", "y"),
    ("y: N sign", "y ** -1", "y"),
    ("y: N sign", "abs(y)", "ones(N)"),
    ("y: N sign", "sign(y)", "y"),
    ("y: N sign", "square(y)", "ones(N)"),
    ("G: D x D symmetric sign", "G ** 2", "ones(D, D)"),
    ("x: N positive", "abs(x)", "x"),
    ("x: N positive", "sign(x)", "ones(N)"),
    ("x: N positive", "relu(x)", "x"),
    ("x: N positive", "step(x)", "ones(N)"),
]


@pytest.mark.parametrize("decl, text, after", RULE_CASES)
def test_domain_rule_holds_on_its_domain(decl, text, after):
    p = matcalc.parse(f"{decl}\nf = sum({text})")
    before = p.expr(text)
    simplified = Simplifier()(before)
    assert str(simplified) == after
    for seed in range(3):
        values = draw(p, sizes(p), np.random.default_rng(seed))
        values.update({str(d): n for d, n in sizes(p).items()})
        want = np.broadcast_to(evaluate(before, values), np.shape(evaluate(before, values)))
        got = np.broadcast_to(evaluate(simplified, values), want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_domain_rules_do_not_fire_without_the_declaration():
    p = matcalc.parse("Y: N x K\ny: N\nx: N\nf = sum(Y) + sum(y) + sum(x)")
    for text in ("sum(Y, axis=1)", "y ** 2", "abs(y)", "abs(x)", "Y ** 3"):
        node = p.expr(text)
        assert Simplifier()(node) is node
    onehot = matcalc.parse("Y: N x K onehot\nf = sum(Y)")
    for node in (reduce_sum(onehot.variables["Y"], 0), power(onehot.variables["Y"], const(-1))):
        assert Simplifier()(node) is node       # column sums vary; 0 ** -1 is not 0


def test_common_scale_holds_numerically():
    p = matcalc.parse("A: N x K\nB: N x K\nf = sum(A)")
    for before, after in [
            (p.expr("A / N - B / N"), "(A - B) / N"),
            (p.expr("-(A / N) + B / N"), "(B - A) / N"),
            (p.expr("2 * A - 2 * B + 2 * A @ B.T @ A"), "2 * (A + A @ B.T @ A - B)"),
            (p.expr("2.0 * A - 2.0 * B"), "2.0 * (A - B)")]:     # a float scale ends
        got = Simplifier()(before)
        assert str(got) == after
        rng = np.random.default_rng(0)
        values = {"A": rng.standard_normal((4, 4)), "B": rng.standard_normal((4, 4)), "N": 4}
        np.testing.assert_allclose(evaluate(got, values), evaluate(before, values), rtol=1e-13)
    different = p.expr("2 * A - 3 * B")
    assert Simplifier()(different) is different
    assert Simplifier()(func("abs", p.variables["A"])) is func("abs", p.variables["A"])


# --------------------------------------------- softmax cross-entropy (4) ---

def test_softmax_cross_entropy_gradient_is_the_textbook_form():
    p = matcalc.parse((EXAMPLES / "softmax_ce.mc").read_text("utf-8"))
    lines = str(matcalc.grad(p)).splitlines()
    assert "δZ = (softmax(Z, axis=1) - Y) / N" in lines
    assert "∂loss/∂W = X.T @ δZ" in lines and "∂loss/∂b = sum(δZ, axis=0)" in lines
    assert "dZ = (_softmax(Z, 1) - Y) / N" in matcalc.codegen(p)
    for seed in range(3):
        assert matcalc.check(p, seed=seed).ok


def test_the_issues_reproducer_textbook_backward_passes_against():
    """The issue: a correct textbook backward, dZ = (P - Y) / N, was
    reported WRONG (relative error 0.36) because Y was drawn from a normal."""
    p = matcalc.parse((EXAMPLES / "softmax_ce.mc").read_text("utf-8"))
    spec = f"{EXAMPLES / 'softmax_ce_backward.py'}:backward"
    for seed in range(3):
        result = check_against(p, spec, seed=seed)
        assert result.ok, str(result)
    out = cli("check", "examples/softmax_ce.mc", "--against",
              "examples/softmax_ce_backward.py:backward")
    assert out.returncode == 0 and "WRONG" not in out.stdout, out.stdout + out.stderr


def test_without_the_declaration_the_textbook_backward_is_wrong_for_other_labels():
    text = (EXAMPLES / "softmax_ce.mc").read_text("utf-8").replace(" onehot", "")
    result = check_against(matcalc.parse(text), f"{EXAMPLES / 'softmax_ce_backward.py'}:backward")
    assert not result.ok


# ----------------------------------------------------- logistic Hessian (4) ---

def test_logistic_hessian_with_sign_labels_is_the_textbook_form():
    p = matcalc.parse((EXAMPLES / "logistic.mc").read_text("utf-8"))
    assert p.variables["y"].domain == "sign"
    assert "H_w = X.T @ ((g0 * (1 - g0))[:, None] * X)" in str(matcalc.hessian(p, "w"))
    module = matcalc.compile(p, hessian="w", hvp=True)
    hessian = module.source[module.source.index("def hessian"):]
    assert "np.exp(-np.abs(t0))" in hessian and "y * t0" not in hessian
    rng = np.random.default_rng(7)
    X, w = rng.standard_normal((9, 3)), rng.standard_normal(3)
    y = rng.choice([-1.0, 1.0], 9)
    s = 1 / (1 + np.exp(-y * (X @ w)))
    want = X.T @ ((s * (1 - s))[:, None] * X)
    np.testing.assert_allclose(module.hessian(X=X, y=y, w=w), want, rtol=1e-12)
    v = rng.standard_normal(3)
    np.testing.assert_allclose(module.hvp(v, X=X, y=y, w=w), want @ v, rtol=1e-12)
    eps, grad = 1e-6, lambda u: module.value_and_grad(X=X, y=y, w=u)[1]["w"]
    fd = np.array([(grad(w + eps * e) - grad(w - eps * e)) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(module.hessian(X=X, y=y, w=w), fd, rtol=1e-6, atol=1e-8)


# --------------------------------------------------- inputs= and --inputs ---

def least_squares():
    return matcalc.problem("sum((X @ w - t) ** 2) / N", X="N x D", w="D", t="N", wrt="w")


def test_given_inputs_set_the_sizes():
    """The issue: X of shape 5 x 3 was reported as N=3, D=4."""
    X = np.random.default_rng(0).standard_normal((5, 3))
    result = matcalc.check(least_squares(), inputs={"X": X})
    assert result.ok and result.dims == {"N": 5, "D": 3}


def test_given_inputs_are_used_and_the_others_drawn():
    p = least_squares()
    rng = np.random.default_rng(1)
    X, t = rng.standard_normal((6, 2)), rng.standard_normal(6)
    w = np.linalg.lstsq(X, t, rcond=None)[0]           # the minimum: gradient 0
    result = matcalc.check(p, inputs={"X": X, "t": t, "w": w})
    assert result.ok and np.isclose(result.value, np.sum((X @ w - t) ** 2) / 6)
    partial = matcalc.check(p, inputs={"t": t})        # a partial dict: no NumPy error
    assert partial.ok and partial.dims["N"] == 6


@pytest.mark.parametrize("inputs, fragment", [
    ({"X": np.ones((6, 3)), "t": np.ones((6, 1))},
     "input 't': expected shape (N,) = (6,), got (6, 1)"),
    ({"t": np.ones(5), "X": np.ones((6, 3))},
     "input 'X' of shape (6, 3) has N = 6, but input 't' gives N = 5"),
    ({"X": np.ones(3)}, "input 'X': expected shape (N, D), got (3,)"),
    ({"q": 1.0}, "input 'q' is not a variable of the problem"),
    ({"X": [["a"]]}, "input 'X' is not an array of numbers"),
    ({"X": np.full((2, 2), np.nan)}, "input 'X' has entries that are not finite"),
])
def test_bad_inputs_are_a_matcalc_error_naming_the_input(inputs, fragment):
    with pytest.raises(matcalc.MatcalcError) as info:
        matcalc.check(least_squares(), inputs=inputs)
    assert fragment in str(info.value)


def test_given_sizes_conflicting_with_dims_are_an_error():
    with pytest.raises(matcalc.MatcalcError, match=r"dims= \(--dims\) gives N = 4"):
        matcalc.check(least_squares(), dims={"N": 4}, inputs={"X": np.ones((5, 3))})
    assert matcalc.check(least_squares(), dims={"N": 5}, inputs={"X": np.ones((5, 3))}).ok


@pytest.mark.parametrize("name, value, why", [
    ("Y", np.array([[1.0, 0.0], [1.0, 1.0]]), "a row that is not one 1"),
    ("y", np.array([1.0, 0.5]), "entries that are not ±1"),
    ("x", np.array([1.0, -2.0]), "entries that are not positive"),
    ("S", np.array([[1.0, 2.0], [0.0, 1.0]]), "not symmetric"),
    ("P", np.array([[1.0, 2.0], [2.0, 1.0]]), "not positive definite"),
])
def test_inputs_outside_their_domain_are_an_error(name, value, why):
    p = matcalc.parse("Y: N x N onehot\ny: N sign\nx: N positive\nS: N x N symmetric\n"
                      "P: N x N spd\nW: N x N\n"
                      "f = sum(Y * W) + sum(y * x) + sum(S * W) + logdet(P)")
    with pytest.raises(matcalc.MatcalcError, match=f"input '{name}' is declared .* {why}"):
        matcalc.check(p, inputs={name: value})


def test_against_uses_given_inputs():
    p = matcalc.parse((EXAMPLES / "softmax_ce.mc").read_text("utf-8"))
    X = np.random.default_rng(2).standard_normal((7, 2))
    result = check_against(p, f"{EXAMPLES / 'softmax_ce_backward.py'}:backward",
                           inputs={"X": X, "Y": np.eye(3)[[0, 1, 2, 0, 1, 2, 0]]})
    assert result.ok and result.dims == {"N": 7, "D": 2, "K": 3}


def test_cli_inputs(tmp_path):
    rng = np.random.default_rng(3)
    good = tmp_path / "data.npz"
    np.savez(good, X=rng.standard_normal((5, 3)), Y=np.eye(4)[[0, 1, 2, 3, 0]])
    out = cli("check", "examples/softmax_ce.mc", "--inputs", str(good))
    assert out.returncode == 0 and "N=5, D=3, K=4" in out.stdout, out.stderr
    out = cli("check", "examples/softmax_ce.mc", "--inputs", str(good), "--against",
              "examples/softmax_ce_backward.py:backward")
    assert out.returncode == 0 and "N=5, D=3, K=4" in out.stdout, out.stderr
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=rng.standard_normal((5, 3)), Y=rng.standard_normal((5, 4)))
    one = tmp_path / "one.npy"
    np.save(one, np.ones(3))
    text = tmp_path / "text.npz"
    text.write_text("X = 1")
    for args, fragment in [
            (["--inputs", str(bad)], "input 'Y' is declared N x K onehot"),
            (["--inputs", str(bad), "--against", "examples/softmax_ce_backward.py:backward"],
             "input 'Y' is declared N x K onehot"),
            (["--inputs", str(good), "--dims", "N=4"], "(--dims) gives N = 4"),
            (["--inputs", str(one)], "holds one array"),
            (["--inputs", str(text)], "is not a readable .npz file"),
            (["--inputs", str(tmp_path / "missing.npz")], "cannot read")]:
        out = cli("check", "examples/softmax_ce.mc", *args)
        assert out.returncode == 2 and fragment in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr


# ------------------------------------- the rules inside whole derivations ---

IN_CONTEXT = [
    # (problem, text the rules remove from the gradients)
    ("X: N x D; y: N sign; w: D\nf = sum(y ** 2 * (X @ w) ** 2)\nwrt w", "y ** 2"),
    ("y: N sign; x: N\nf = sum(abs(y) * exp(x))\nwrt x", "abs("),
    ("y: N sign; x: N positive\nf = sum(y ** 4 * x) + sum(y * log(x))\nwrt y, x", "y ** 3"),
    ("x: N positive\nf = sum(abs(x) * log(x))", "sign("),
    ("x: N positive\nf = sum(relu(x) ** 2)", "step("),
    ("Y: N x K onehot; Z: N x K\nf = mean(sum(Y * log(sigmoid(Z)), axis=1))\nwrt Z", None),
    ("Y: N x K onehot; v: N\nf = sum(sum(Y, axis=1) * v ** 2)\nwrt v", "Y"),
    ("Y: N x K onehot; Z: N x K\nf = sum(Y * (Z - logsumexp(Z, axis=1)[:, None]))\nwrt Z",
     "sum("),
    ("u: K onehot; z: K\nf = -u @ log(softmax(z))\nwrt z", "sum("),
    ("Y: N x K onehot; X: N x D; W: D x K\nf = sum((Y ** 2 - softmax(X @ W, axis=1)) ** 2)\nwrt W",
     "Y ** 2"),
]


@pytest.mark.parametrize("text, gone", IN_CONTEXT)
def test_rules_inside_derivations_agree_with_finite_differences(text, gone):
    p = matcalc.parse(text.replace("; ", "\n"))
    g = str(matcalc.grad(p)).split("\n", 1)[1]       # without the header line
    if gone is not None:
        assert gone not in g, g
    for seed in range(3):
        result = matcalc.check(p, seed=seed)
        assert result.ok, f"seed {seed}:\n{g}\n{result}"


def test_sign_rules_in_second_order_agree_with_finite_differences():
    p = matcalc.parse("X: N x D\ny: N sign\nw: D\nf = sum(y ** 2 * (X @ w) ** 2) / 2\nwrt w")
    assert "H_w = X.T @ X" in str(matcalc.hessian(p, "w")).splitlines()
    module = matcalc.compile(p, hessian="w", hvp=True)
    rng = np.random.default_rng(8)
    X, w, y = rng.standard_normal((7, 3)), rng.standard_normal(3), rng.choice([-1.0, 1.0], 7)
    np.testing.assert_allclose(module.hessian(X=X, y=y, w=w), X.T @ X, rtol=1e-12)
    v = rng.standard_normal(3)
    np.testing.assert_allclose(module.hvp(v, X=X, y=y, w=w), X.T @ X @ v, rtol=1e-12)


def test_positive_first_holds_numerically():
    """−A + B is printed and computed as B − A (the constant term stays first)."""
    p = matcalc.parse("A: N x K\nB: N x K\nf = sum(A)")
    rng = np.random.default_rng(1)
    values = {"A": rng.standard_normal((3, 4)), "B": rng.standard_normal((3, 4)), "N": 3}
    for before, after in [(p.expr("-A + B"), "B - A"),
                          (p.expr("2 - A + exp(B)"), "2 + exp(B) - A"),
                          (p.expr("-A - B"), "-A - B")]:
        got = Simplifier()(before)
        assert str(got) == after
        np.testing.assert_allclose(evaluate(got, values), evaluate(before, values), rtol=1e-15)
    unscaled = matcalc.problem("-sum(Y * log(softmax(Z, axis=1)))", Y="N x K onehot", Z="N x K")
    assert "∂f/∂Z = softmax(Z, axis=1) - Y" in str(matcalc.grad(unscaled)).splitlines()


# ------------------------------ generated problems over declared domains ---

GENERATED_DECLS = ("Y: N x K onehot\ny: N sign\nx: N positive\nZ: N x K\nv: N\nw: K\n"
                   "S: N x N symmetric sign\n")
LEAVES = {"M": ["Y", "Z", "Y * Z", "outer(y, w)", "S @ Y"],
          "V": ["y", "x", "v", "Z @ w", "sum(Y * Z, axis=1)", "sum(Y, axis=1)", "S @ v"]}
UNARY = ["tanh({})", "sin({})", "square({})", "abs({})", "sign({})", "relu({})",
         "sigmoid({})", "({}) ** 2", "({}) ** 3", "({}) ** 4"]
BINARY = ["({}) + ({})", "({}) - ({})", "({}) * ({})"]


def _term(rng, kind: str, depth: int) -> str:
    """A random term of kind M (N x K) or V (N) over the declared variables."""
    choice = rng.random()
    if depth == 0 or choice < 0.25:
        return rng.choice(LEAVES[kind])
    if choice < 0.6:
        return rng.choice(UNARY).format(_term(rng, kind, depth - 1))
    if kind == "V" and choice < 0.7:
        return f"sum({_term(rng, 'M', depth - 1)}, axis=1)"
    return rng.choice(BINARY).format(_term(rng, kind, depth - 1), _term(rng, kind, depth - 1))


@pytest.mark.parametrize("seed", range(60))
def test_generated_problems_over_domains_agree_with_finite_differences(seed):
    """Random problems over onehot, sign, positive and symmetric sign
    variables: every gradient (the domain rules applied) against central
    differences at inputs drawn from the domains."""
    import random
    rng = random.Random(seed)
    kind = rng.choice("MV")
    text = f"{GENERATED_DECLS}f = sum({_term(rng, kind, 3)})\nwrt Z, x, v, w"
    p = matcalc.parse(text)
    for check_seed in (0, 1):
        result = matcalc.check(p, seed=check_seed)
        assert result.ok, f"{text}\n{matcalc.grad(p)}\n{result}"
