"""Einsum subscripts: NumPy's notation read, checked and put in one form.

A specification is read into (operand subscripts, output subscripts), each a
string of letters: implicit output made explicit (the letters that occur
once, in alphabetical order, after the broadcast `...` axes), `...` spelt
with letters of its own. `canonical` renames the letters i, j, k, ... in
order of first appearance, so two specifications of one contraction are one
string, and `spec_text` writes the normal form "ij,jk->ik".
"""

from __future__ import annotations

from ..errors import ShapeError
from ..ir.shapes import fmt

# The letters of a canonical specification, in the order they are handed out.
LETTERS = "ijklmnopqrstuvwxyzabcdefghABCDEFGHIJKLMNOPQRSTUVWXYZ"


def parse_spec(spec: str, ndims: list[int]) -> tuple[list[str], str]:
    """(subscripts of each operand, output subscripts) of NumPy's `spec`
    for operands of `ndims` axes; a bad subscript, a wrong number of
    operands or axes, or a bad output is a ShapeError."""
    text = spec.replace(" ", "")
    lhs, arrow, out = text.partition("->")
    if "->" in out or (not arrow and ">" in text):
        raise ShapeError(f"einsum: '{spec}' has a misplaced '->'")
    for c in text.replace("->", "").replace("...", "").replace(",", ""):
        if c not in LETTERS:
            raise ShapeError(f"einsum: '{c}' in '{spec}' is not a subscript; subscripts are "
                             "letters a-z, A-Z, with '...' for broadcast axes")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ShapeError(f"einsum: '{spec}' names {len(terms)} operand"
                         f"{'s' if len(terms) != 1 else ''}, got {len(ndims)}")
    terms, ellipsis = _ellipses(spec, terms, ndims)
    if arrow:
        out = _explicit(spec, out, ellipsis, terms)
    else:
        once = sorted(c for c in set("".join(terms)) if "".join(terms).count(c) == 1
                      and c not in ellipsis)
        out = ellipsis + "".join(once)
    return terms, out


def _ellipses(spec: str, terms: list[str], ndims: list[int]) -> tuple[list[str], str]:
    """The terms with each `...` spelt with letters of its own (the broadcast
    axes, aligned from the right as NumPy aligns them), and those letters."""
    spare = [c for c in LETTERS if c not in spec]
    widths = []
    for k, (term, ndim) in enumerate(zip(terms, ndims)):
        named = len(term.replace("...", ""))
        if term.count("...") > 1 or "." in term.replace("...", ""):
            raise ShapeError(f"einsum: operand {k + 1}'s subscripts '{term}' have a stray '.'")
        if "..." not in term and named != ndim or named > ndim:
            raise ShapeError(f"einsum: operand {k + 1} has {ndim} axes but its subscripts "
                             f"'{term}' name {named}")
        widths.append(ndim - named if "..." in term else 0)
    ellipsis = "".join(spare[:max(widths, default=0)])
    terms = [t.replace("...", ellipsis[len(ellipsis) - w:]) for t, w in zip(terms, widths)]
    return terms, ellipsis


def _explicit(spec: str, out: str, ellipsis: str, terms: list[str]) -> str:
    """The explicit output, checked: each letter once and in some operand."""
    if out.count("...") > 1 or "." in out.replace("...", ""):
        raise ShapeError(f"einsum: the output '{out}' of '{spec}' has a stray '.'")
    out = out.replace("...", ellipsis)
    for c in out:
        if out.count(c) > 1:
            raise ShapeError(f"einsum: the output of '{spec}' names '{c}' twice")
        if not any(c in t for t in terms):
            raise ShapeError(f"einsum: the output of '{spec}' names '{c}', which no "
                             "operand has")
    return out


def sizes(terms: list[str], shapes: list, spec: str = "") -> dict:
    """Each letter's size; an index whose sizes differ is a ShapeError."""
    found: dict = {}
    where: dict = {}
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        for c, n in zip(term, shape):
            if c in found and found[c] != n:
                raise ShapeError(f"einsum{f' {spec!r}' if spec else ''}: index '{c}' is "
                                 f"{found[c]} in operand {where[c] + 1} ({fmt(shapes[where[c]])})"
                                 f" but {n} in operand {k + 1} ({fmt(shape)})")
            found.setdefault(c, n)
            where.setdefault(c, k)
    return found


def canonical(terms: list[str], out: str) -> tuple[list[str], str]:
    """The letters renamed i, j, k, ... in order of first appearance."""
    names: dict[str, str] = {}
    for c in "".join(terms) + out:
        names.setdefault(c, LETTERS[len(names)])
    return ["".join(names[c] for c in t) for t in terms], "".join(names[c] for c in out)


def spec_text(terms: list[str], out: str) -> str:
    """The normal form "ij,jk->ik"."""
    return ",".join(terms) + "->" + out


def split_spec(spec: str) -> tuple[list[str], str]:
    """The terms and output of a normal-form specification."""
    lhs, _, out = spec.partition("->")
    return lhs.split(","), out


def fresh(used: str, count: int = 1) -> str:
    """`count` letters not in `used`."""
    return "".join([c for c in LETTERS if c not in used][:count])
