"""Every LaTeX output renders in KaTeX and in MathJax 3 (Jupyter's renderer).

For every example and every command that prints LaTeX (`grad`, `grad
--steps`, `hessian` by each variable, by all of them and by default, `hvp`,
`jacobian`, with `--format latex`), and for each problem's own
`_repr_latex_`, the output is rendered by KaTeX's `renderToString` (throwOnError,
strict) and by MathJax 3's TeX input with every package (an error throws
instead of becoming a red node), through tests/render_latex.js; and each
result's `_repr_latex_` (problem, gradient, derivation, HVP, expression) must
be found whole by the delimiter scan Jupyter's MathJax runs on an output. Needs node
and the npm packages katex and mathjax-full in .ci/node_modules (`npm ci
--prefix .ci`, which .ci/run does); skips by name without them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess

import pytest

import matcalc
from matcalc import MatcalcError
from matcalc.cli import run

from conftest import EXAMPLES, ROOT

MODULES = ROOT / ".ci" / "node_modules"
NODE = shutil.which("node")
MISSING = ("node" if NODE is None else
           next((p for p in ("katex", "mathjax-full") if not (MODULES / p).is_dir()), None))
pytestmark = pytest.mark.skipif(MISSING is not None,
                                reason=f"needs {MISSING} (npm ci --prefix .ci)")


def render_errors(formulas: list[tuple[str, str]], pages=()) -> list[dict]:
    """What KaTeX or MathJax rejects among (name, latex) pairs, and the
    notebook outputs among (name, _repr_latex_) `pages` whose math Jupyter
    would not find whole."""
    payload = json.dumps([{"name": n, "latex": f} for n, f in formulas]
                         + [{"name": n, "latex": f, "page": True} for n, f in pages])
    proc = subprocess.run([NODE, str(ROOT / "tests" / "render_latex.js")], input=payload,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NODE_PATH": str(MODULES)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _printed(argv: list[str]) -> str | None:
    """What `matcalc ARGV` prints, or None where the command does not apply
    (a Jacobian of a scalar function, a Hessian by several variables)."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            run(argv)
    except MatcalcError:
        return None
    return out.getvalue()


def _commands(path) -> list[list[str]]:
    """Every LaTeX-printing command on one example."""
    wrt = matcalc.parse(path.read_text("utf-8")).wrt
    second = [["hessian"], ["hvp"], ["jacobian"], ["hessian", "--wrt", ",".join(wrt)]]
    second += [["hessian", "--wrt", name] for name in wrt]
    return [["grad"], ["grad", "--steps"]] + second


def _notebook_outputs(problem, name: str) -> list[tuple[str, str]]:
    """The `_repr_latex_` of each result a notebook shows for `problem`."""
    g = matcalc.grad(problem)
    second = matcalc.jacobian(problem) if problem.output.shape else matcalc.hvp(problem)
    results = {"Problem": problem, "Gradient": g, "Derivation": g.derivation(),
               "HVP or Jacobian": second, "Expr": next(iter(g))[1]}
    return [(f"{name}: {kind}._repr_latex_", r._repr_latex_()) for kind, r in results.items()]


def _formulas() -> list[tuple[str, str]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.mc")):
        problem = matcalc.parse(path.read_text("utf-8"))
        found.append((f"{path.name}: Problem._repr_latex_", problem._repr_latex_().strip("$")))
        for command in _commands(path):
            latex = _printed([command[0], str(path), "--format", "latex", *command[1:]])
            if latex is not None:
                found.append((f"matcalc {' '.join(command)} {path.name}", latex))
    return found


def test_every_example_and_command_renders():
    formulas = _formulas()
    names = {name.split(" ")[1] for name, _ in formulas if name.startswith("matcalc")}
    assert names >= {"grad", "hessian", "hvp", "jacobian"} and len(formulas) > 60
    assert any("--steps" in name for name, _ in formulas)
    pages = [page for path in sorted(EXAMPLES.glob("*.mc"))
             for page in _notebook_outputs(matcalc.parse(path.read_text("utf-8")), path.name)]
    errors = render_errors(formulas, pages)
    assert not errors, "\n".join(f"{e['renderer']} rejects {e['name']}: {e['error']}"
                                 for e in errors[:20])


def test_the_renderers_reject_what_they_cannot_render():
    """The check can fail: an undefined command, an unbalanced brace and an
    environment's end without its start are reported by both renderers, and
    a notebook output whose `$$` ends early by Jupyter's delimiter scan."""
    bad = [("undefined", r"\operatorname{f}\left(x\right) \oddcommand"),
           ("unbalanced", r"\frac{1}{2"),
           ("aligned outside", r"x &= 1 \\ y &= 2 \end{aligned}")]
    good = r"\begin{aligned} x &= \frac{1}{2} \\ y &< 1 \end{aligned}"
    errors = render_errors(bad + [("good", good)],
                           [("page", f"$${good}$$"), ("split page", r"$$x$$ + $$y$$")])
    assert {(e["name"], e["renderer"]) for e in errors} == {
        (name, renderer) for name, _ in bad for renderer in ("katex", "mathjax")} | {
        ("split page", "jupyter")}


def _latex_or_none(make) -> str | None:
    try:
        return make().latex()
    except MatcalcError:  # a Hessian the row's function has no closed form for
        return None


def test_the_identity_table_renders():
    """Each textbook row of tests/test_identities.py: its gradient, derivation
    and Hessian as matcalc prints them, and the textbook formula itself."""
    from matcalc.targets.latex import to_latex
    from test_identities import ROWS

    formulas = []
    for row in (r for r in ROWS if not r.missing):
        p = row.problem()
        g = matcalc.grad(p)
        formulas += [(f"{row.id}: grad", g.latex()), (f"{row.id}: steps", g.derivation().latex()),
                     (f"{row.id}: expected", to_latex(p.expr(row.expected)))]
        hessian = _latex_or_none(lambda: matcalc.hessian(p, row.wrt))
        formulas += [(f"{row.id}: hessian", hessian)] if hessian is not None else []
    assert len(formulas) > 250
    errors = render_errors(formulas)
    assert not errors, "\n".join(f"{e['renderer']} rejects {e['name']}: {e['error']}"
                                 for e in errors[:20])


def test_every_rule_name_renders():
    """The rule and identity of every operator and every named identity, as
    a step's `\\text{}` annotation prints it (their Unicode symbols as math)."""
    from matcalc.ops.core import OPS
    from matcalc.targets.latex import _rule_text

    names = {o.rule for o in OPS.values()} | {o.identity for o in OPS.values()}
    names |= {identity for _, _, identity in matcalc.rules()}
    formulas = [(name, rf"\begin{{aligned}} x && \text{{{_rule_text(name)}}} \end{{aligned}}")
                for name in sorted(names) if name]
    assert len(formulas) > 60
    errors = render_errors(formulas)
    assert not errors, "\n".join(f"{e['renderer']} rejects {e['name']}: {e['error']}"
                                 for e in errors[:20])
