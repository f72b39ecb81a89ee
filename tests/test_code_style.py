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
    sources = {"module": matcalc.codegen(text, target=target)}
    try:
        sources["hvp"] = matcalc.codegen(text, target=target, hvp=True)
    except matcalc.MatcalcError:  # not a scalar function, or no second order
        pass
    style = pycodestyle.StyleGuide(max_line_length=79, ignore=["E741", "W503", "W504"],
                                   quiet=True)
    for kind, source in sources.items():
        file = tmp_path / f"{path.stem}_{kind}.py"
        file.write_text(source, encoding="utf-8")
        report = style.check_files([str(file)])
        assert report.total_errors == 0, f"{kind}: {report.get_statistics()}"
