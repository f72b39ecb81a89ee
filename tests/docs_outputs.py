"""The outputs the documentation shows, checked against the real ones.

A shown output is a ```console block of README.md, benchmarks/README.md or
docs/*.md: a line `$ command` followed by what the command prints (standard
output, then standard error), as many commands as the block holds.
tests/test_docs.py runs every such command and compares; after a change to
what matcalc prints, regenerate every shown output (and the tutorial
notebook's stored outputs) with

    python tests/docs_outputs.py --write

and review the diff.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md",
        *sorted((ROOT / "docs").glob("*.md"))]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"
CONSOLE = re.compile(r"^```console\n(.*?)^```$", re.S | re.M)
# Shown commands whose documented outcome is not success: `check` finding
# seed 004's hand-written backward wrong exits 1; bad input exits 2.
EXIT = {
    "matcalc check examples/seed004.mc --dims N=5,O=5 "
    "--against examples/seed004_handwritten.py:backward": 1,
    "matcalc grad -e 'sum(X ^ 2)' -d 'X: N x D'": 2,
    "matcalc grad -e 'sum(max(X, axis=(1, -2)))' -d 'X: B x T x D'": 2,
}


@dataclass(frozen=True)
class Shown:
    """One `$ command` of a console block and the output shown under it."""

    doc: Path
    command: str
    output: str


def _split(block: str) -> list[tuple[str, str]]:
    """(command, output) pairs of a console block's text."""
    pairs: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:].strip(), []))
        elif pairs:
            pairs[-1][1].append(line)
    return [(command, "\n".join(out)) for command, out in pairs]


def shown(doc: Path) -> list[Shown]:
    """Every command a document shows with its output, in order."""
    text = doc.read_text("utf-8")
    return [Shown(doc, command, output) for block in CONSOLE.findall(text)
            for command, output in _split(block)]


def argv(command: str) -> list[str]:
    """The argument list that runs a documented command with this Python."""
    words = shlex.split(command)
    if words[0] == "matcalc":
        return [sys.executable, "-m", "matcalc.cli", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    if words[0] == "cat" and len(words) == 2:  # a file of the project, shown whole
        return [sys.executable, "-c", "import sys; print(open(sys.argv[1], encoding=\"utf-8\").read())",
                words[1]]
    raise ValueError(f"a shown command runs matcalc, python or cat FILE: {command}")


def normal(text: str) -> str:
    """Output as compared: trailing spaces and blank lines dropped."""
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def run(command: str) -> tuple[int, str]:
    """(exit code, standard output then standard error) of a command."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "MPLBACKEND": "Agg"}
    proc = subprocess.run(argv(command), cwd=ROOT, capture_output=True, env=env, timeout=300)
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    return proc.returncode, normal(out)


def _rewrite(doc: Path) -> bool:
    """Replace each shown output of `doc` by the real one; True if it changed."""
    text = doc.read_text("utf-8")

    def block(match: re.Match) -> str:
        parts = []
        for command, _ in _split(match.group(1)):
            parts.append(f"$ {command}\n{run(command)[1]}\n")
        return "```console\n" + "".join(parts) + "```"

    new = CONSOLE.sub(block, text)
    if new != text:
        doc.write_text(new, "utf-8")
    return new != text


def execute_notebook(path: Path = NOTEBOOK, timeout: int = 120):
    """The notebook at `path`, executed from the examples folder (nbformat
    node); needs nbclient and ipykernel."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return notebook


def _merged(outputs: list) -> list:
    """A cell's outputs with consecutive pieces of one stream joined (how a
    stream is cut into pieces depends on timing)."""
    merged: list = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged
                and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    return merged


def notebook_outputs(notebook) -> list[list[tuple[str, str]]]:
    """What each code cell shows: (stream name or MIME type, text) pairs."""
    cells = []
    for cell in (c for c in notebook.cells if c.cell_type == "code"):
        shown = []
        for out in _merged([dict(o) for o in cell.outputs]):
            if out["output_type"] == "stream":
                shown.append((out["name"], normal(out["text"])))
            elif out["output_type"] == "error":
                shown.append(("error", f"{out['ename']}: {out['evalue']}"))
            else:
                shown += [(mime, normal(text)) for mime, text in sorted(out["data"].items())]
        cells.append(shown)
    return cells


def write() -> None:
    """Regenerate every shown output and the notebook's stored outputs."""
    for doc in DOCS:
        if _rewrite(doc):
            print(f"updated {doc.relative_to(ROOT)}")
    import nbformat

    notebook = execute_notebook()
    for cell in notebook.cells:  # no timings in the stored file
        cell.get("metadata", {}).pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [nbformat.from_dict(o) for o in _merged(
                [nbformat.from_dict(dict(o)) for o in cell.outputs])]
    nbformat.write(notebook, NOTEBOOK)
    print(f"executed and stored {NOTEBOOK.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help="rewrite the shown outputs and the notebook in place")
    args = parser.parse_args()
    if args.write:
        write()
        return 0
    stale = [s for doc in DOCS for s in shown(doc) if run(s.command)[1] != normal(s.output)]
    for s in stale:
        print(f"{s.doc.relative_to(ROOT)}: $ {s.command}: the shown output differs")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
