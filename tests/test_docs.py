"""Every command and Python block README.md, benchmarks/README.md and
docs/*.md show is run here, and every output they show is compared with
the real one (tests/docs_outputs.py; `python tests/docs_outputs.py --write`
regenerates them).

A command is a line of an indented block or an inline `matcalc ...` in the
text; a synopsis with placeholders (`matcalc grad PROBLEM [--wrt ...]`) is
the form of the others, not a command. Installing (`pip install`) and the
suite itself (`pytest -q`) are what CI runs; a benchmark runs as its
`--quick` smoke run (one shown plain and with options: plain, and once with
all the options) and the problem generator on 20 problems, so the command
is the documented one at a size a test can afford. A benchmark's timing
verdict (exit 1 when a target is missed) is its own, judged on a quiet
machine in benchmarks/README.md, never here: here it must finish, with every
implementation agreeing. Python blocks run whole. A ```console block's
`$ command` is run once, by `test_shown_output`, which compares what it
prints and its exit code.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

import docs_outputs
from conftest import ROOT
from docs_outputs import DOCS, EXIT

BLOCK = re.compile(r"^ {4,}((?:matcalc|python|pip|pytest) [^\n]*)$", re.M)
INLINE = re.compile(r"`(matcalc (?:grad|hessian|hvp|jacobian|codegen|check) [^`]+|matcalc rules"
                    r"|python (?:examples|benchmarks|tests)/[^`]+)`")
PYTHON = re.compile(r"```python\n(.*?)```", re.S)
SYNOPSIS = re.compile(r"\b[A-Z][A-Z_:]{2,}\b|\[")  # PROBLEM, MODULE:FUNCTION, [--wrt ...]
SHOWN = [s for doc in DOCS for s in docs_outputs.shown(doc)]


def _commands() -> list[str]:
    found = []
    for doc in DOCS:
        text = docs_outputs.CONSOLE.sub("", doc.read_text("utf-8"))
        for line in BLOCK.findall(text) + INLINE.findall(text):
            for part in line.split("#")[0].split("&&"):
                part = part.strip()
                if part and not SYNOPSIS.search(part) and part not in found:
                    found.append(part)
    return found


def _runnable(command: str) -> list[str] | None:
    """The argument list that runs `command` here, or None for installing,
    for the suite itself and for rewriting the docs."""
    words = shlex.split(command)
    if words[0] in ("pip", "pytest") or words[1:] == ["tests/docs_outputs.py", "--write"]:
        return None  # installing, the suite, regenerating the docs' outputs
    if words[0] == "matcalc":
        return [sys.executable, "-m", "matcalc.cli", *words[1:]]
    words[0] = sys.executable
    if "benchmarks/" in words[1] and "--quick" not in words:
        words.append("--quick")
    if "--problems" in words:
        at = words.index("--problems") + 1
        words[at] = str(min(int(words[at]), 20))
    return words


def _distinct(commands: list[str]) -> list[str]:
    """The commands that run here, each way of running it once; where a
    benchmark is shown plain and with options (`--only b,c`, `--no-compile`),
    its plain run and one run with all the options."""
    seen, out = set(), []
    for c in commands:
        argv = _runnable(c)
        if argv is not None and tuple(argv) not in seen:
            seen.add(tuple(argv))
            out.append(c)
    for plain in [c for c in out if c.startswith("python benchmarks/") and len(c.split()) == 2]:
        group = [c for c in out if c != plain and c.split()[:2] == plain.split()]
        if len(group) > 1:
            out = [c for c in out if c not in group]
            out.append(" ".join([plain, *(c.split(maxsplit=2)[2] for c in group)]))
    return out


COMMANDS = _distinct(_commands())


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 10 and len(SHOWN) >= 10
    shown = {s.command for s in SHOWN}
    assert set(EXIT) <= set(COMMANDS) | shown, "a command in EXIT is no longer in the docs"
    assert {d.name for d in DOCS} >= {"README.md", "language.md"}, "docs/ is not read"


@pytest.mark.parametrize("shown", SHOWN, ids=lambda s: f"{s.doc.name}: {s.command}")
def test_shown_output(shown):
    """What a console block shows is what the command prints."""
    code, out = docs_outputs.run(shown.command)
    assert code == EXIT.get(shown.command, 0), out[-3000:]
    assert out == docs_outputs.normal(shown.output), (
        f"{shown.doc.name}: `{shown.command}` prints something else now; if the new output "
        "is right, run `python tests/docs_outputs.py --write`")


def _missing_import(code: str, folder=ROOT) -> str | None:
    """A library Python `code` imports unconditionally that is not installed
    (PyTorch, JAX and Dask are optional extras), else None; `folder`'s own
    modules count as installed."""
    body = ast.parse(code).body
    names = {a.name.split(".")[0] for n in body if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in body
              if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return next((m for m in sorted(names) if not (folder / f"{m}.py").exists()
                 and importlib.util.find_spec(m) is None), None)


def _missing_library(argv: list[str]) -> str | None:
    """`_missing_import` of a documented Python script, else None."""
    script = next((ROOT / a for a in argv[1:2] if a.endswith(".py")), None)
    return None if script is None else _missing_import(script.read_text("utf-8"),
                                                       script.parent)


def _has_cuda() -> bool:
    """Whether PyTorch is installed and sees a CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch
    return torch.cuda.is_available()


@pytest.mark.parametrize("command", COMMANDS)
def test_command_runs(command, tmp_path):
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "MPLBACKEND": "Agg"}
    argv = _runnable(command)
    if (missing := _missing_library(argv)) is not None:
        pytest.skip(f"{command} needs {missing}, an optional extra")
    if "cuda" in argv and not _has_cuda():
        pytest.skip(f"{command} needs a CUDA device")
    if "-o" in argv:  # the file a command writes goes to a temporary folder
        at = argv.index("-o") + 1
        argv[at] = str(tmp_path / argv[at])
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, env=env, timeout=300)
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    if "benchmarks/" in command:
        assert proc.returncode in (0, 1) and "MISMATCH" not in out, out[-3000:]
    else:
        assert proc.returncode == EXIT.get(command, 0), out[-3000:]
    assert "Traceback" not in out, out[-3000:]


BLOCKS = [(doc, code) for doc in DOCS for code in PYTHON.findall(doc.read_text("utf-8"))]


@pytest.mark.parametrize("index", range(len(BLOCKS)),
                         ids=lambda i: f"{BLOCKS[i][0].name}-{i}")
def test_python_block_runs(index):
    code = BLOCKS[index][1]
    if (missing := _missing_import(code)) is not None:
        pytest.skip(f"the block needs {missing}, an optional extra")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode("utf-8", "replace")[-3000:]


def test_ci_installs_what_the_notebook_and_latex_tests_need():
    """CI runs these tests, not their skips: .ci/run installs the docs extra
    and the npm renderers, pinned in .ci/package.json."""
    tomllib = pytest.importorskip("tomllib")
    run = (ROOT / ".ci" / "run").read_text("utf-8")
    installed = re.search(r"pip install -e '\.\[([\w,]+)\]'", run)
    assert installed and "docs" in installed.group(1).split(",")
    assert "npm ci --prefix .ci" in run
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert {r.split(">")[0] for r in extras["optional-dependencies"]["docs"]} >= {
        "nbclient", "ipykernel", "nbformat"}
    pinned = json.loads((ROOT / ".ci" / "package.json").read_text("utf-8"))["dependencies"]
    assert set(pinned) == {"katex", "mathjax-full"}
