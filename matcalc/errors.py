"""The one exception type matcalc raises for bad input, and its subclasses.

Every error carries a one-line message; errors found in text also carry the
place (line and column, 1-based) and render the offending line with a caret:

    mlp.mc:8:12: shape mismatch in '@': X is N x D but W1 is E x H
        Z1 = X @ W1 + b1
               ^
"""

from __future__ import annotations

import difflib


class MatcalcError(Exception):
    """Bad input to matcalc: syntax, names, shapes, options or domains."""

    def __init__(self, message: str, *, line: int | None = None,
                 column: int | None = None, source: str | None = None,
                 filename: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.source = source
        self.filename = filename

    def at(self, line: int | None, column: int | None,
           source: str | None = None) -> "MatcalcError":
        """Attach a place to an error raised without one (keeps a known place)."""
        if self.line is None and line is not None:
            self.line, self.column = line, column
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        prefix = ""
        if self.filename:
            prefix = f"{self.filename}:"
        if self.line is not None:
            prefix += f"{self.line}:{self.column}:"
        head = f"{prefix} {self.message}" if prefix else self.message
        if self.line is None or self.source is None:
            return head
        lines = self.source.splitlines()
        if not 1 <= self.line <= len(lines):
            return head
        text, column = _window(lines[self.line - 1].expandtabs(1), max(self.column or 1, 1))
        return f"{head}\n    {text}\n    {' ' * (column - 1)}^"


def _window(text: str, column: int, width: int = 100) -> tuple[str, int]:
    """At most `width` characters of a long line around `column` (elided
    with ...), and the column in them."""
    if len(text) <= width:
        return text, column
    start = max(0, min(column - 1 - width // 2, len(text) - width))
    shown = ("..." if start else "") + text[start:start + width] + \
        ("..." if start + width < len(text) else "")
    return shown, column - start + (3 if start else 0)


class ParseError(MatcalcError):
    """The text is not a well-formed matcalc problem."""


class NameResolutionError(MatcalcError):
    """An unknown variable, dimension or function, or a wrong `wrt` name."""


class NoEntryError(NameResolutionError, KeyError):
    """A result has no entry of that name (`grad(p)["W"]` of a problem by
    `w`): a KeyError too, as a dict's lookup raises."""

    def __init__(self, head: str, name, known):
        close = closest(name, known) if isinstance(name, str) else None
        super().__init__(f"{head} {', '.join(known)}"
                         + (f"; did you mean {close!r}?" if close else ""))


def closest(name: str, known) -> str | None:
    """The known name that `name` likely misspells: one that differs only
    in case, else the nearest by difflib whose edit distance (a swap of
    neighbours counts one) is at most a third of its length (at least 1)."""
    same = [k for k in known if k.lower() == name.lower()]
    if same:
        return same[0]
    near = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return next((k for k in near if _distance(name, k) <= max(1, len(name) // 3)), None)


def _distance(a: str, b: str) -> int:
    """The optimal-string-alignment distance: insertions, deletions,
    substitutions and swaps of neighbours, one each."""
    rows = [list(range(len(b) + 1))]
    for i, x in enumerate(a, 1):
        row = [i]
        for j, y in enumerate(b, 1):
            row.append(min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (x != y)))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


class ShapeError(MatcalcError):
    """Shapes that do not compose (matrix product, broadcasting, squareness)."""


class DomainError(MatcalcError):
    """A constant out of float range (division by a zero constant, overflow),
    a value outside a domain, or no valid random input could be drawn."""
