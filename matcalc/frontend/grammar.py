"""The grammar and its syntax errors: the Lark LALR parser of
`grammar/matcalc.lark` (shipped as package data) and the messages that say,
in words, what was expected where the text stops making sense."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import lark
from lark import Token

from . import hints
from .reading import check_size, place
from ..errors import ParseError


class _BracketNewlines:
    """Post-lexer: newlines inside brackets continue the line, as in Python."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        for token in stream:
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(depth - 1, 0)
            elif token.type == "_NL" and depth:
                continue
            yield token


@lru_cache(maxsize=1)
def lalr() -> lark.Lark:
    """The LALR parser of the grammar (built once)."""
    grammar = resources.files("matcalc.grammar").joinpath("matcalc.lark").read_text("utf-8")
    # cache=True keeps the LALR tables in the temporary folder, keyed by the
    # grammar's hash: the CLI starts 25 ms sooner.
    return lark.Lark(grammar, parser="lalr", lexer="contextual",
                     propagate_positions=True, postlex=_BracketNewlines(),
                     maybe_placeholders=True, cache=True)


_READABLE = {"NAME": "a name", "NUMBER": "a number", "INT": "an integer",
             "_NL": "end of line", "$END": "end of input", "LPAR": "'('",
             "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','",
             "COLON": "':'", "EQUAL": "'='", "SEMICOLON": "';'",
             "ADDOP": "'+' or '-'", "MULOP": "'*', '/' or '@'", "POWOP": "'**'",
             "MINUS": "'-'", "PLUS": "'+'", "PRIME": "\"'\"", "DOT": "'.'",
             "SCALAR": "'scalar'", "WRT": "'wrt'", "AT": "'at'", "ELLIPSIS": "'...'",
             "STRUCTURE": "'symmetric' or 'spd'",
             "DOMAIN": "'positive', 'sign', 'onehot' or 'int'",
             "TIMES": "'x'"}


def _expected(names) -> str:
    if {"NAME", "NUMBER"} <= set(names) or {"NAME", "LPAR"} <= set(names):
        return "an expression"
    words = sorted({_READABLE.get(n, n) for n in names})
    return " or ".join(words[:6]) if words else "something else"


def _token_text(token: Token) -> str:
    if token.type == "$END":
        return "end of input"
    if token.type == "_NL":
        return "end of line"
    return repr(str(token))


def _with_hint(message: str, text: str, line: int, column: int,
               offset: int | None = None) -> ParseError:
    """A syntax error at line:column, with the fix where `hints` knows one,
    and the bracket left open on an earlier line before `offset`, if any."""
    lines = text.splitlines()
    hint = hints.syntax(lines[line - 1], column) if 1 <= line <= len(lines) else ""
    opened = _unclosed(text, offset) if offset is not None else None
    if opened is not None and opened[1] < line:
        hint = f"the {opened[0]!r} at {opened[1]}:{opened[2]} is not closed" + \
            (f"; {hint}" if hint else "")
    return ParseError(message + (f"; {hint}" if hint else ""), line=line, column=column,
                      source=text)


_BRACKETS = re.compile(r"#[^\n]*|'[^'\n]*'|\"[^\"\n]*\"|[()\[\]]")


def _unclosed(text: str, offset: int) -> tuple[str, int, int] | None:
    """The innermost bracket open at `offset` of `text` (comments and
    strings skipped): (the bracket, its line, its column), or None."""
    stack = []
    for match in _BRACKETS.finditer(text, 0, offset):
        char = match.group()
        if char in "([":
            stack.append(match.start())
        elif char in ")]" and stack:
            stack.pop()
    if not stack:
        return None
    line, column = place(text, stack[-1])
    return text[stack[-1]], line, column


def syntax_error(err: lark.exceptions.LarkError, text: str) -> ParseError:
    """Lark's error as a ParseError at its line and column, in words."""
    if isinstance(err, lark.exceptions.UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        if char == "\r":
            return ParseError(f"syntax error: unexpected character '\\r'; {hints.CR_ONLY}",
                              line=err.line, column=err.column, source=text)
        return _with_hint(f"syntax error: unexpected character {char!r}", text,
                          err.line, err.column)
    if isinstance(err, lark.exceptions.UnexpectedToken):
        token = err.token
        line, column = token.line, token.column
        offset = token.start_pos if token.start_pos is not None else len(text)
        if token.type == "$END":
            lines = text.splitlines() or [""]
            line, column, offset = len(lines), len(lines[-1]) + 1, len(text)
        return _with_hint(f"syntax error: unexpected {_token_text(token)}; "
                          f"expected {_expected(err.expected)}", text, line, column, offset)
    if isinstance(err, lark.exceptions.UnexpectedEOF):
        lines = text.splitlines() or [""]
        return ParseError("syntax error: unexpected end of input",
                          line=len(lines), column=len(lines[-1]) + 1, source=text)
    return ParseError(f"syntax error: {err}")


def syntax_tree(text: str) -> lark.Tree:
    """The statements of `text` (refused if too large, or as a syntax error)."""
    try:
        return lalr().parse(check_size(text))
    except lark.exceptions.LarkError as err:
        raise syntax_error(err, text) from None
