"""Survey: every generated module (value_and_grad, hessian, hvp, jacobian) of
the examples and the test corpora that still builds an array of ones.

`python tests/survey_ones.py [--generated N] [--targets numpy,torch,...] [--no-literals]`
prints one line per hit: corpus/problem, the function, the target and the
generated line (the examples, the textbook table, the tensor and einsum
corpora, every problem text written in a test, and N generated problems).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import matcalc  # noqa: E402
from matcalc.errors import MatcalcError  # noqa: E402

PATTERN = re.compile(r"\b(np|xp|torch|jnp)\.ones\(|np\.outer\(np\.ones")


def corpora(generated: int, literals: bool = True):
    """(corpus name, problem id, Problem) for every problem surveyed."""
    for path in sorted((ROOT / "examples").glob("*.mc")):
        yield "examples", path.name, path.read_text("utf-8")
    import textbook_table
    for row in textbook_table.ROWS:
        yield "textbook", row.id, row.problem()
    import tensor_corpus
    for name, (text, _) in tensor_corpus.CORPUS.items():
        yield "tensor", name, text
    import einsum_corpus
    for i, (text, shapes) in enumerate(einsum_corpus.CORPUS):
        yield "einsum", f"{i}:{text[:40]}", (text, shapes)
    if literals:
        yield from _literals()
    if generated:
        from strategies import RandomSource, build_problem
        for seed in range(generated):
            try:
                yield "generated", f"seed {seed}", build_problem(RandomSource(seed)).text
            except Exception:  # noqa: BLE001 - a builder retry; skip it
                continue


def _literals():
    """Every string constant (or concatenation of them) in tests/*.py that
    parses as a problem."""
    seen = set()
    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Constant, ast.BinOp)):
                try:
                    text = ast.literal_eval(node) if isinstance(node, ast.Constant) else \
                        eval(compile(ast.Expression(node), "<s>", "eval"), {})  # noqa: S307
                except Exception:  # noqa: BLE001
                    continue
                if isinstance(text, str) and "\n" in text and ":" in text and text not in seen:
                    seen.add(text)
                    try:
                        matcalc.parse(text)
                    except Exception:  # noqa: BLE001
                        continue
                    yield "literal", f"{path.name}:{node.lineno}", text


def _problem(spec):
    if isinstance(spec, tuple):
        text, shapes = spec
        return matcalc.problem(text, **shapes)
    return matcalc.parse(spec) if isinstance(spec, str) else spec


def variants(p):
    scalar = not p.output.shape
    yield "grad", {}
    if scalar:
        yield "hvp", {"hvp": True}
        yield "hessian", {"hessian": True}
    else:
        yield "jacobian", {"jacobian": True}


def survey(generated: int, targets, literals: bool = True):
    hits = 0
    for corpus, name, spec in corpora(generated, literals):
        try:
            p = _problem(spec)
        except MatcalcError:
            continue
        for what, kw in variants(p):
            for target in targets:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        source = matcalc.codegen(p, target=target, **kw)
                except Exception as e:  # noqa: BLE001 - no closed form etc.
                    if what == "grad":
                        print(f"# {corpus} {name} {what} {target}: {type(e).__name__}: {e}"[:160])
                    continue
                for line in source.splitlines():
                    if PATTERN.search(line) and not line.lstrip().startswith("#"):
                        hits += 1
                        print(f"{corpus:9} {name:40} {what:8} {target:9} | {line.strip()}")
    print(f"hits: {hits}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--generated", type=int, default=0)
    parser.add_argument("--targets", default="numpy")
    parser.add_argument("--no-literals", action="store_true",
                        help="skip the problem texts written in tests/*.py")
    args = parser.parse_args()
    survey(args.generated, args.targets.split(","), not args.no_literals)


if __name__ == "__main__":
    main()
