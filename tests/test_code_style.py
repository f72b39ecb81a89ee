"""Generated code is PEP 8: every example's module, for every target (and
with its Hessian-vector product), passes pycodestyle at 79 columns.

E741 (an ambiguous name such as `O` or `l`) is left out: the names are the
user's own, as declared in the problem."""

from pathlib import Path

import pycodestyle
import pytest

import matcalc

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.mc"))
TARGETS = ["numpy", "array-api", "torch", "jax"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_generated_modules_are_pep8(path, target, tmp_path):
    text = path.read_text(encoding="utf-8")
    sources = {f"{path.stem}": matcalc.codegen(text, target=target)}
    try:
        sources[f"{path.stem}_hvp"] = matcalc.codegen(text, target=target, hvp=True)
    except matcalc.MatcalcError:  # not a scalar function, or no second order
        pass
    _assert_pep8(sources, tmp_path)


# Long input names: the checks' lines (`if ... .dtype in (...):`) wrap too.
LONG_NAMES = ("embedding_table_of_words: N x D\nweights_of_the_layer: D\n"
              "f = sum((embedding_table_of_words @ weights_of_the_layer) ** 2)\n")


@pytest.mark.parametrize("target", TARGETS)
def test_long_names_wrap_into_pep8(target, tmp_path):
    _assert_pep8({"long": matcalc.codegen(LONG_NAMES, target=target, hvp=True)}, tmp_path)


def _assert_pep8(sources: dict, folder):
    """Each source compiles and pycodestyle finds nothing in it."""
    style = pycodestyle.StyleGuide(max_line_length=79, ignore=["E741", "W503", "W504"],
                                   quiet=True)
    for kind, source in sources.items():
        compile(source, kind, "exec")
        file = folder / f"{kind}.py"
        file.write_text(source, encoding="utf-8")
        report = style.check_files([str(file)])
        assert report.total_errors == 0, f"{kind}: {report.get_statistics()}"
