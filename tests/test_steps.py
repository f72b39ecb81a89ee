"""The derivation step by step: every line is an equality that holds.

Differentials are checked against central differences of the intermediates
along random directions; the shares of dL, the adjoints and the gradients are
evaluated exactly at the same point.
"""

from __future__ import annotations

import functools
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc.ad.steps import differential
from matcalc.checks.verify import draw, evaluate, sizes

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
PROBLEMS = sorted(p.stem for p in EXAMPLES.glob("*.mc"))
EXTRA = [
    ("logdet(A) + trace(inv(A) @ B) + det(A)", {"A": "N x N", "B": "N x N"}),
    ("sum(softmax(X, axis=1) * Y) + logsumexp(x)", {"X": "N x D", "Y": "N x D", "x": "D"}),
    ("x @ S @ x + norm(x)", {"x": "N", "S": "N x N symmetric"}),
    ("sum(tanh(X @ W) ** 2) / N", {"X": "N x D", "W": "D x H"}),
    ("sum(solve(A, B) * C)", {"A": "N x N", "B": "N x K", "C": "N x K"}),
]


def _values_at(program, values, dims):
    """The inputs, dimensions and every forward binding's value."""
    env = {**values, **dims}
    for b in program.forward():
        env[b.name] = evaluate(b.expr, env)
    return env


def _check(problem, seed=0, eps=1e-6):
    g = matcalc.grad(problem)
    derivation = g.derivation()
    program = g.program
    rng = np.random.default_rng(seed)
    dims = sizes(problem)
    values = draw(problem, dims, rng)
    env = _values_at(program, values, dims)
    directions = {}
    for w in problem.wrt:
        d = rng.standard_normal(np.shape(values[w]))
        if problem.variables[w].structure:
            d = (d + d.T) / 2
        directions[w] = d
    up = _values_at(program, {**values, **{w: values[w] + eps * d for w, d in directions.items()}},
                    dims)
    down = _values_at(program, {**values, **{w: values[w] - eps * d for w, d in directions.items()}},
                      dims)
    for w, d in directions.items():
        env[differential(w, ()).name] = d
    for b in program.forward():
        # a condition's differential is 0: booleans are read as numbers
        env[f"d {b.name}"] = (np.asarray(up[b.name], dtype=float)
                              - np.asarray(down[b.name], dtype=float)) / (2 * eps)
    value = env[program.value]
    env[f"δ {program.value}"] = rng.standard_normal(np.shape(value)) if np.ndim(value) else 1.0
    kinds = set()
    for step in derivation.steps:
        kinds.add(step.kind)
        if step.kind == "differential":
            exact = evaluate(step.rhs, env)
            np.testing.assert_allclose(exact, env[step.lhs.name],
                                       rtol=1e-5, atol=1e-6, err_msg=str(step))
            env[step.lhs.name] = exact  # the shares below are exact identities
        elif step.kind == "share":
            left = np.sum(np.asarray(evaluate(step.lhs, env)) * env[step.rhs.name])
            right = sum(np.sum(np.asarray(evaluate(G, env)) * env[d.name])
                        for G, d in step.terms)
            np.testing.assert_allclose(left, right, rtol=1e-9, atol=1e-12, err_msg=str(step))
        elif step.kind == "adjoint":
            env[step.lhs.name] = evaluate(step.rhs, env)
        else:
            module = matcalc.compile(problem)
            _, cache = module.forward(*(values[n] for n in problem.variables))
            dout = env[f"δ {program.value}"] if np.ndim(value) else None
            expected = dict(zip(module.WRT, module.backward(cache, dout)))[step.lhs.name]
            got = evaluate(step.rhs, env)
            if problem.variables[step.lhs.name].structure:
                got = (got + np.transpose(got)) / 2
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=str(step))
    return kinds


@pytest.mark.parametrize("name", PROBLEMS)
def test_every_step_of_every_example_holds(name):
    problem = matcalc.parse((EXAMPLES / f"{name}.mc").read_text())
    for seed in (0, 1):
        kinds = _check(problem, seed)
    assert {"differential", "share", "gradient"} <= kinds


@pytest.mark.parametrize("expr, shapes", EXTRA, ids=[e for e, _ in EXTRA])
def test_every_step_holds(expr, shapes):
    _check(matcalc.problem(expr, **shapes))


def test_mlp_steps_read_like_the_textbook():
    text = str(matcalc.grad((EXAMPLES / "mlp.mc").read_text(), steps=True).steps)
    assert "dZ1 = X @ dW1 + db1    [product rule; sum rule]" in text
    assert "dt0 = dZ1 * step(Z1)    [chain rule for the elementwise relu]" in text
    assert ("<δt1, dt1> = <δt1 @ W2.T, dt0> + <t0.T @ δt1, dW2> + <sum(δt1, axis=0), db2>"
            in text)
    assert "trace cyclicity" in text
    assert "∂loss/∂W1 = X.T @ δZ1" in text


def test_sigmoid_chain_steps_follow_seed_002():
    text = str(matcalc.grad((EXAMPLES / "sigmoid_chain.mc").read_text(), steps=True).steps)
    assert "da3 = dz3 * a3 * (1 - a3)    [chain rule for the elementwise sigmoid]" in text
    assert "δz3 = δa3 * a3 * (1 - a3)" in text
    assert "∂C0/∂w3 = δz3 * a2" in text


def test_trace_det_inverse_rules_are_named():
    text = str(matcalc.grad(matcalc.problem(*EXTRA[0][:1], **EXTRA[0][1]), steps=True).steps)
    for rule in ("d log det(X) = tr(X⁻¹ dX)", "d X⁻¹ = −X⁻¹ dX X⁻¹", "d tr(X) = tr(dX)",
                 "d det(X) = det(X) tr(X⁻¹ dX)"):
        assert rule in text


def test_steps_latex_is_balanced():
    latex = matcalc.grad((EXAMPLES / "mlp.mc").read_text(), steps=True).steps.latex()
    assert latex.count("{") == latex.count("}")
    assert latex.count(r"\left") == latex.count(r"\right")
    assert r"\left\langle \delta_{t_{1}}, \mathrm{d}t_{1} \right\rangle" in latex


def test_cli_steps():
    out = subprocess.run([sys.executable, "-m", "matcalc.cli", "grad",
                          str(EXAMPLES / "affine.mc"), "--steps"],
                         capture_output=True, text=True, check=True).stdout
    assert "dS = dX @ W + X @ dW + db" in out
    assert "∂L/∂W = X.T @ δS" in out


# ------------------------------------------- every name defined before use ---

_NAME_CHAR = r"A-Za-z0-9_\u0370-\u03ff\u2080-\u2089"


def _forms(fmt: str):
    """How `fmt` writes a plain name, its adjoint and its differential; how
    a line defines a name; and the printed derivation of a problem."""
    if fmt == "latex":
        from matcalc.targets.latex import symbol
        return (symbol, lambda n: rf"\delta_{{{symbol(n)}}}",
                lambda n: rf"\mathrm{{d}}{symbol(n)}",
                lambda line, c: line.startswith(c + " &= ") or line.startswith(r"&\text{given "),
                lambda d: d.latex().splitlines()[1:-1], " && ")
    if fmt == "unicode":
        from matcalc.targets.unicode import derivation_unicode, name
        return (name, lambda n: "δ" + name(n), lambda n: "d" + name(n),
                lambda line, c: line.strip().startswith(c + " = ") or "given" in line,
                lambda d: derivation_unicode(d).splitlines(), "    [")
    return (str, lambda n: "δ" + n, lambda n: "d" + n,
            lambda line, c: line.strip().startswith(c + " = ") or "given" in line,
            lambda d: str(d).splitlines(), "    [")


def _first_use(lines: list[str], written: str, fmt: str) -> int | None:
    before = rf"(?<![{_NAME_CHAR}\\])" if fmt != "latex" else r"(?<![A-Za-z\\])"
    after = rf"(?![{_NAME_CHAR}])" if fmt != "latex" else r"(?![A-Za-z_])"
    pattern = re.compile(before + re.escape(written) + after)
    return next((k for k, line in enumerate(lines) if pattern.search(line)), None)


def _undefined(problem, fmt: str) -> list[str]:
    """The names the derivation uses on a line before the one defining them
    (intermediates, their adjoints δv and differentials dv)."""
    plain, delta, diff, defines, printed, rules = _forms(fmt)
    g = matcalc.grad(problem, steps=True)
    lines = [line.split(rules)[0] for line in printed(g.steps)]
    if fmt != "latex":  # the header: the function as written, then what is given
        given = lines[0].partition(", given ")[2]
        lines[0] = given and "given " + given
    names = [b.name for b in g.program.forward() if b.name not in problem.variables]
    wrong = []
    for form in (delta, diff, plain):
        shown = [(n, form(n)) for n in names]
        masked = lines
        if form is plain:  # a plain name inside δv or dv is no use of v
            masked = [functools.reduce(lambda s, f: s.replace(f, "•"),
                                       sorted({f(n) for n in names for f in (delta, diff)},
                                              key=len, reverse=True), line) for line in lines]
        for n, written in shown:
            k = _first_use(masked, written, fmt)
            if k is not None and not defines(lines[k], written):
                wrong.append(f"{written} first used in: {lines[k]}")
    return wrong


@pytest.mark.parametrize("fmt", ["text", "unicode", "latex"])
@pytest.mark.parametrize("name", PROBLEMS + [e for e, _ in EXTRA])
def test_every_name_in_the_steps_is_defined_before_use(name, fmt):
    """t0, t1, δt1, dt1: each is defined on its own line before any line uses it."""
    if name in PROBLEMS:
        problem = matcalc.parse((EXAMPLES / f"{name}.mc").read_text())
    else:
        problem = matcalc.problem(name, **dict(EXTRA)[name])
    assert _undefined(problem, fmt) == []


def test_the_check_of_defined_names_can_fail():
    """A derivation whose intermediates were not listed first is caught."""
    problem = matcalc.parse((EXAMPLES / "mlp.mc").read_text())
    steps = matcalc.grad(problem, steps=True).steps
    cut = "\n".join(line for line in str(steps).splitlines() if not line.startswith("  t0 = "))
    plain, delta, diff, defines, _, rules = _forms("text")
    lines = [line.split(rules)[0] for line in cut.splitlines()[1:]]
    assert lines[1].startswith("  Z1 = ")
    k = _first_use(lines, "t0", "text")
    assert not defines(lines[k], "t0")


def test_a_differential_that_would_read_as_a_name_is_bracketed():
    """With a variable named dx, the differential of x is d(x), not dx."""
    steps = str(matcalc.grad(matcalc.problem("sum(dx * x)", x="N", dx="N"), steps=True).steps)
    assert "  df = <x, ddx> + <dx, d(x)>" in steps.splitlines()[6]
    plain = str(matcalc.grad(matcalc.problem("sum(u * x)", x="N", u="N"), steps=True).steps)
    assert "  df = <x, du> + <u, dx>" in plain.splitlines()[6]
