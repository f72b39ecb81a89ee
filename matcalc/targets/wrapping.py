"""Generated statements within WIDTH columns, broken as PEP 8 has it.

A long statement goes on in brackets: one call in its own (`t0 = np.einsum(`
... `)`), anything else in parentheses around its value, broken at spaces
outside any inner brackets; a part too long even so opens its first bracket
and goes on four columns in. Printed code has spaces only between tokens,
so every such break is legal.
"""

from __future__ import annotations

import re
import textwrap

WIDTH = 79


def wrap(line: str, indent: str) -> list[str]:
    """The statement `line`, at `indent`, within WIDTH columns."""
    if len(indent + line) <= WIDTH or any(" " in q for q in re.findall("'[^']*'", line)):
        # never split a string literal; quoted identifiers have no spaces
        return [indent + line]
    nested = line[:len(line) - len(line.lstrip(" "))]  # a line inside a loop
    indent, line = indent + nested, line[len(nested):]
    if line.startswith("#"):
        return [indent + "# " + part for part in
                textwrap.wrap(line[2:], WIDTH - len(indent) - 2, break_long_words=False)]
    assigned = _ASSIGNMENT.search(line)  # `t = `, `t += `: its value after it
    start = assigned.end() if assigned else len("return ") * line.startswith("return ")
    if _one_call(line[start:]) and not line.endswith(":"):  # `t0 = np.einsum(` ... `)`
        return [indent + part for part in _opened(line, WIDTH - len(indent), start)]
    if line.endswith((" = cache", " = inputs", " = arrays")):
        head, _, source = line.rpartition(" = ")
        opening, body, closing = "(", head.strip("()"), ") = " + source
    elif line.startswith("return "):
        opening, body, closing = "return (", line[len("return "):], ")"
    elif line.startswith("for ") and line.endswith("):"):  # for x in f(...):
        head, _, rest = line.partition("(")
        opening, body, closing = head + "(", rest[:-2], "):"
    elif line.startswith(("if ", "elif ", "while ")) and line.endswith(":"):
        head, _, test = line.partition(" ")
        opening, body, closing = head + " (", test[:-1], "):"
    elif assigned is None:  # a call statement: break inside its parentheses
        head, _, rest = line.partition("(")
        opening, body, closing = head + "(", rest[:-1], ")"
    else:
        opening, body, closing = line[:start] + "(", line[start:], ")"
        if _enclosed(body):  # a tuple: its own parentheses
            body = body[1:-1]
    parts = _broken(body, WIDTH - len(indent) - 4)
    return [indent + opening] + [indent + "    " + p for p in parts] + [indent + closing]


def _broken(body: str, width: int) -> list[str]:
    """`body` in lines of at most `width`, broken at spaces outside any
    brackets (a break inside `f(a, b` would need the next line aligned with
    its bracket, PEP 8); a part too long even so opens its first bracket on
    its line and goes on, four columns in, on the next ones."""
    depth, start, pieces = 0, 0, []
    for k, ch in enumerate(body):
        depth += _DEPTH.get(ch, 0)
        if ch == " " and depth == 0:
            pieces.append(body[start:k])
            start = k + 1
    lines: list[str] = []
    for piece in pieces + [body[start:]]:
        if lines and len(lines[-1]) + 1 + len(piece) <= width:
            lines[-1] += " " + piece
        else:
            lines.append(piece)
    return [part for line in lines for part in
            (_opened(line, width) if len(line) > width else [line])]


def _opened(line: str, width: int, start: int = 0) -> list[str]:
    """A line too long, `f(a, b) + c`, as `f(`, its contents broken four
    columns in, and `) + c` (the first bracket from `start` opened); as it
    is where it has no bracket to open."""
    opening = next((k for k in range(start, len(line)) if _DEPTH.get(line[k]) == 1), None)
    if opening is None or width < 20:
        return [line]
    depth = 0
    for k in range(opening, len(line)):
        depth += _DEPTH.get(line[k], 0)
        if depth == 0:
            break
    inner = line[opening + 1:k]
    return ([line[:opening + 1]] + ["    " + part for part in _broken(inner, width - 4)]
            + [line[k:]])


_DEPTH = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}

# The operator of an assignment, `=` or an in-place `+=`, `-=`, `*=` (never
# a comparison: `==`, `<=` have no space before the `=`).
_ASSIGNMENT = re.compile(r" [-+*]?= ")


def _one_call(code: str) -> bool:
    """Whether `code` is one call or subscript, `np.einsum(...)`,
    `-x.sum(axis=0)` (no space outside its brackets), not a tuple."""
    depth = 0
    for ch in code:
        depth += _DEPTH.get(ch, 0)
        if ch == " " and depth == 0:
            return False
    return code.endswith((")", "]")) and not _enclosed(code)


def _enclosed(code: str) -> bool:
    """Whether `code` is one parenthesised whole, `(...)`."""
    depth = 0
    for k, ch in enumerate(code):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return k == len(code) - 1 and ch == ")"
    return False
