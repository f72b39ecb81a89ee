"""Checks on the text as it is read: size limits before parsing, dimension
names that read as two, the first argument as written (for hints) and the
values of constants, which must be finite real numbers."""

from __future__ import annotations

import math
import re

from .. import ops
from ..errors import DomainError, ParseError
from ..ir.expr import Apply, Const, Expr, apply, const, postorder
from ..ops.indexing import size_value

# Longest input read, in tokens (names, numbers, operators, brackets, line
# breaks; comments are free), and deepest nesting of brackets: larger input
# is refused before the parser spends seconds on it.
MAX_TOKENS = 50_000
MAX_NESTING = 20_000
MAX_NAME = 1_000
_TOKEN = re.compile(r"\w+|\*\*|\S|\n")
_COMMENT = re.compile(r"#[^\n]*")


def check_size(text: str) -> str:
    """`text` with comments blanked; refused when longer than MAX_TOKENS
    tokens, nested deeper than MAX_NESTING brackets or with a name or
    number longer than MAX_NAME characters."""
    code = _COMMENT.sub(lambda m: " " * len(m.group()), text) if "#" in text else text
    depth, count = 0, 0
    for count, match in enumerate(_TOKEN.finditer(code), 1):
        char = match.group()
        depth += (char in "([") - (char in ")]")
        if depth > MAX_NESTING or count > MAX_TOKENS or len(char) > MAX_NAME:
            line = code.count("\n", 0, match.start()) + 1
            column = match.start() - (code.rfind("\n", 0, match.start()) + 1) + 1
            what = (f"the problem is too deep: brackets nested more than {MAX_NESTING:,} deep"
                    if depth > MAX_NESTING else
                    f"the problem is too long: more than {MAX_TOKENS:,} tokens (names, "
                    "numbers, operators, brackets, line breaks)" if count > MAX_TOKENS else
                    f"a name or number is too long: more than {MAX_NAME:,} characters")
            raise ParseError(f"{what}; matcalc reads no more",
                             line=line, column=column, source=text)
    return code


def glued_dimensions(name: str) -> str | None:
    """'N x D' for a dimension name that reads as one (NxD, Nx3, D1xD2):
    capital letters (with digits) or integers joined by x; None for
    max_len, Nx, exp, nxd."""
    parts = name.split("x")
    if len(parts) > 1 and all(re.fullmatch(r"[A-Z]\d*|\d+", p) for p in parts):
        return " x ".join(parts)
    return None


def first_argument(text: str) -> list[str]:
    """The first argument's text in `(a, b, ...)`, as a one-item list (or [])."""
    depth = 0
    for i, char in enumerate(text):
        depth += (char in "([") - (char in ")]")
        if (char == "," and depth == 1) or depth == 0:
            first = " ".join(text[1:i].split())
            return [first] if first else []
    return []


def argument_starts(text: str) -> list[int]:
    """The offsets in `text`, which starts at a call's '(', where each of its
    top-level arguments starts (its first character that is not a space)."""
    depth, starts, start = 0, [], None
    for i, char in enumerate(text):
        if depth == 1 and start is None and not char.isspace() and char not in ",)":
            starts.append(i)
            start = i
        depth += (char in "([") - (char in ")]")
        if (char == "," and depth == 1):
            start = None
        if depth == 0:
            break
    return starts


def place(text: str, offset: int) -> tuple[int, int]:
    """The line and column (1-based) of `offset` in `text`."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def misread_function(problem) -> ParseError | None:
    """The error for an array-valued function (the last line) right after
    a scalar intermediate it does not use, which reads as the function
    meant (a line after `f = sum(...)` took its place); else None. Only
    differentiating refuses it: a printed gradient program reads back."""
    before = [n for n in problem.intermediates if n != problem.output_name]
    node = problem.intermediates[before[-1]] if before else None
    if node is None or not problem.output.shape or node.shape or size_value(node) is not None \
            or any(n is node for n in postorder([problem.output])):
        return None
    name, text = before[-1], problem.source or ""
    at = re.search(rf"(?:^|[;\n])[ \t]*({re.escape(name)})[ \t]*=(?!=)", text)
    line, column = place(text, at.start(1)) if at else (None, None)
    return ParseError(f"the function is the last line, {problem.output_name}, an array, and "
                      f"the scalar {name} before it is never used: put {name}'s line last "
                      "(or use or delete it)", line=line, column=column, source=text,
                      filename=problem.filename)


# What an elementwise function's domain takes, in words.
DOMAINS = {"positive": "x > 0", "unit": "|x| < 1", "above_one": "x ≥ 1",
           "above_minus_one": "x > -1"}


def constant_value(node: Expr, values: dict) -> float | None:
    """The value of a scalar free of variables and dimensions (None for
    anything else), computed one operator at a time through the NumPy
    forms of the generated code; `values` keeps them, so each node is
    visited once."""
    for n in postorder([node], values):
        args = [values[a] for a in n.args]
        value = None
        if isinstance(n, Const):
            value = float(n.value) if n.value.is_number else None
        elif isinstance(n, Apply) and not n.shape and args and \
                all(v is not None and not a.shape for v, a in zip(args, n.args)):
            value = _evaluate(n, args)
            if not math.isfinite(value):
                why = "it is not a real number" if math.isnan(value) else "it is infinite"
                takes = DOMAINS.get(ops.OPS[n.op].domain)
                raise DomainError(f"a constant out of range ({n}): {why}"
                                  + (f"; {n.op} takes {takes}" if takes else ""))
        values[n] = value
    return values[node]


def _evaluate(node: Apply, args: list[float]) -> float:
    """`node`'s operator at the numbers `args`, by the NumPy forms."""
    import numpy as np

    from ..targets.evaluation import evaluate
    at = apply(ops.OPS[node.op], tuple(const(a) for a in args), node.params)
    try:
        with np.errstate(all="ignore"):
            value = np.asarray(evaluate(at, {}), dtype=complex)
    except (OverflowError, ZeroDivisionError):  # Python's float ** float
        return math.inf
    except ValueError:
        return math.nan
    if value.imag != 0:
        return math.nan
    return float(value.real)
