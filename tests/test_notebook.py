"""The tutorial notebook, examples/tutorial.ipynb, executed: every cell runs
and shows what the stored notebook shows (`python tests/docs_outputs.py
--write` re-executes and stores it). Needs nbclient and ipykernel (the
`docs` extra, which CI installs); skips by name without them."""

from __future__ import annotations

import importlib.util
import json

import pytest

import docs_outputs
from docs_outputs import NOTEBOOK

MISSING = [m for m in ("nbclient", "ipykernel", "nbformat") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (extra 'docs')")


@pytest.fixture(scope="module")
def executed():
    return docs_outputs.execute_notebook()


def test_the_notebook_runs_and_shows_what_it_stores(executed):
    import nbformat

    stored = docs_outputs.notebook_outputs(nbformat.read(NOTEBOOK, as_version=4))
    fresh = docs_outputs.notebook_outputs(executed)
    assert all(kind != "error" for cell in fresh for kind, _ in cell)
    for number, (old, new) in enumerate(zip(stored, fresh, strict=True)):
        assert old == new, (f"code cell {number} shows something else now; if the new "
                            "output is right, run `python tests/docs_outputs.py --write`")


def test_results_render_as_latex_and_the_bug_is_caught(executed):
    """The problem, gradient and derivation show through _repr_latex_; the
    check names the seed's wrong dW2, and the fixed backward passes."""
    shown = docs_outputs.notebook_outputs(executed)
    latex = [text for cell in shown for kind, text in cell if kind == "text/latex"]
    plain = [text for cell in shown for kind, text in cell if kind == "text/plain"]
    for kind in ("Problem", "Gradient", "Derivation"):
        assert any(text.startswith(f"<{kind}") for text in plain), kind
    assert len(latex) >= 3 and all(text.startswith("$") for text in latex)
    report = "\n".join(text for cell in shown for kind, text in cell if kind == "stdout")
    assert "dW2  shape (H,) but expected H x O  WRONG" in report
    assert "wrong: dW1, db1, dW2" in report
    assert "backward_fixed against matcalc's gradients" in report


def test_the_stored_notebook_is_executed():
    """Stored with its outputs, and no cell left unrun."""
    notebook = json.loads(NOTEBOOK.read_text("utf-8"))
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] and c["execution_count"] for c in code)
