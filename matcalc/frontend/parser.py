"""Text to typed graph: the Lark grammar, name resolution and shape checks.

The grammar is `grammar/matcalc.lark`, shipped as package data. A Lark
`Transformer` turns each expression into graph nodes with the builders of
`ops.py`, so shapes are checked as nodes are built and every error carries
its line and column.
"""

from __future__ import annotations

import difflib
import inspect
import math
from functools import lru_cache
from importlib import resources

import lark
import sympy
from lark import Token, v_args
from lark.visitors import Transformer_NonRecursive

from . import hints
from .. import ops
from ..errors import DomainError, MatcalcError, NameResolutionError, ParseError, ShapeError
from ..ir.expr import Const, Expr, Var, const, var
from ..hooks import provide
from .reading import check_size, constant_value, first_argument, glued_dimensions
from ..ir.problem import Problem
from ..ir.shapes import dim, fmt


# The words that say what values a variable takes, after its shape; a
# symmetric or spd matrix may also be positive (entrywise), a symmetric one sign.
DOMAIN_WORDS = ("positive", "sign", "onehot", "symmetric", "spd")
DOMAIN_WITH_STRUCTURE = {("positive", "symmetric"), ("positive", "spd"), ("sign", "symmetric")}


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
def _lark() -> lark.Lark:
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
             "SCALAR": "'scalar'", "WRT": "'wrt'", "NONE": "'None'",
             "STRUCTURE": "'symmetric' or 'spd'",
             "DOMAIN": "'positive', 'sign' or 'onehot'",
             "_TIMES": "'x'"}


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


def _with_hint(message: str, text: str, line: int, column: int) -> ParseError:
    """A syntax error at line:column, with the fix where `hints` knows one."""
    lines = text.splitlines()
    hint = hints.syntax(lines[line - 1], column) if 1 <= line <= len(lines) else ""
    return ParseError(message + (f"; {hint}" if hint else ""), line=line, column=column,
                      source=text)


def _syntax_error(err: lark.exceptions.LarkError, text: str) -> ParseError:
    if isinstance(err, lark.exceptions.UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        return _with_hint(f"syntax error: unexpected character {char!r}", text,
                          err.line, err.column)
    if isinstance(err, lark.exceptions.UnexpectedToken):
        token = err.token
        line, column = token.line, token.column
        if token.type == "$END":
            lines = text.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
        return _with_hint(f"syntax error: unexpected {_token_text(token)}; "
                          f"expected {_expected(err.expected)}", text, line, column)
    if isinstance(err, lark.exceptions.UnexpectedEOF):
        lines = text.splitlines() or [""]
        return ParseError("syntax error: unexpected end of input",
                          line=len(lines), column=len(lines[-1]) + 1, source=text)
    return ParseError(f"syntax error: {err}")


def _suggest(name: str, known, hint: str = "") -> str:
    """`hint` (the fix from `hints`) if any, else the closest known name."""
    if hint:
        return f"; {hint}"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def _operand(node, where, text: str):
    """`node`, refused where it is a keyword value (None, True, False)."""
    if node is NONE:
        raise ParseError("'None' is only a keyword value, as in axis=None",
                         line=where.line, column=where.column, source=text)
    if isinstance(node, _KeywordValue):
        raise NameResolutionError(f"unknown name '{node.text}'; {hints.NAMES[node.text]}",
                                  line=where.line, column=where.column, source=text)
    return node


class _KeywordValue:
    """`None` (or an undeclared `True`, `False`): only a keyword value, so
    `axis=None` works and `keepdims=True` is refused by its keyword."""

    def __init__(self, text: str):
        self.text = text


NONE = _KeywordValue("None")
KEYWORD_VALUES = {v.text: v for v in (NONE, _KeywordValue("True"), _KeywordValue("False"))}
RESERVED = ("wrt", "scalar", "None")

@v_args(meta=True)
class _ExprBuilder(Transformer_NonRecursive):
    """Builds graph nodes from an expression tree, resolving names in `scope`."""

    def __init__(self, scope: dict[str, Expr], text: str, values: dict | None = None):
        super().__init__(visit_tokens=False)
        self.scope = scope
        self.text = text
        self.values: dict[Expr, float | None] = {} if values is None else values

    def _fail(self, err: MatcalcError, where) -> MatcalcError:
        return err.at(where.line, where.column, self.text)

    def number(self, meta, children):
        token = str(children[0])
        is_int = token.isdigit()
        if not is_int and not math.isfinite(float(token)):
            raise ParseError(f"the number {token} is out of range", line=children[0].line,
                             column=children[0].column, source=self.text)
        if is_int and len(token) > 300:
            raise ParseError(f"the number {token[:10]}... is out of range",
                             line=children[0].line, column=children[0].column, source=self.text)
        return const(sympy.Integer(token) if is_int else sympy.Float(float(token)))

    def name(self, meta, children):
        token = children[0]
        node = self.scope.get(str(token)) if token != "None" else None
        if node is None and str(token) in KEYWORD_VALUES:
            return KEYWORD_VALUES[str(token)]
        if node is None:
            raise NameResolutionError(f"unknown name '{token}'" + _suggest(
                str(token), self.scope, hints.NAMES.get(str(token), "")),
                line=token.line, column=token.column, source=self.text)
        return node

    def _operand(self, node, where):
        return _operand(node, where, self.text)

    def _finite(self, node: Expr, where) -> Expr:
        """`node`, refused where a part of it is a number out of float range
        or not real (exp(1000), log(0), sqrt(-1)): a function of constants is
        computed, as `2 ** 5000` is, and must be a finite float."""
        try:
            constant_value(node, self.values)
        except DomainError as err:
            raise err.at(where.line, where.column, self.text)
        return node

    def binop(self, meta, children):
        left, op, right = children
        left, right = self._operand(left, meta), self._operand(right, meta)
        return self._finite(self._binary(meta.start_pos, meta.end_pos, left, op, right), op)

    def summand(self, meta, children):
        return children[0], meta.end_pos

    def terms(self, meta, children):
        """a ± b ± c ...: one n-ary sum, so a sum of n terms takes time
        linear in n; where it fails, the terms are added pair by pair, left to
        right, and the error names the operator and operands that fail."""
        first, rest = self._operand(children[0], meta), children[1:]
        pairs = [(op, (self._operand(node, meta), end))
                 for op, (node, end) in zip(rest[::2], rest[1::2])]
        try:
            return self._finite(ops.add(first, *(node if op == "+" else ops.neg(node)
                                                 for op, (node, _) in pairs)), meta)
        except MatcalcError as err:
            if err.line is not None:
                raise
            left = first
            for op, (node, end) in pairs:
                left = self._binary(meta.start_pos, end, left, op, node)
            raise self._fail(err, meta)

    def _binary(self, start: int, end: int, left, op, right):
        """`left op right`, the text from `start` to `end` (for messages)."""
        build = {"+": ops.add, "-": ops.sub, "*": ops.mul, "/": ops.div,
                 "@": ops.matmul, "**": ops.power}[str(op)]
        try:
            return build(left, right)
        except ShapeError as err:
            lhs = " ".join(self.text[start:op.start_pos].split())
            rhs = " ".join(self.text[op.end_pos:end].split())
            message = (f"shape mismatch in '{op}': {lhs} is {fmt(left.shape)} "
                       f"but {rhs} is {fmt(right.shape)}")
            if "scalars" in err.message:
                message = err.message
            raise ShapeError(message, line=op.line, column=op.column, source=self.text)
        except MatcalcError as err:
            raise err.at(op.line, op.column, self.text)

    def neg(self, meta, children):
        return ops.neg(self._operand(children[1], meta))

    def transpose(self, meta, children):
        return ops.transpose(self._operand(children[0], meta))

    def attribute(self, meta, children):
        node, attr = children
        if attr != "T":
            hint = hints.ATTRIBUTES.get(str(attr)) or "only '.T' (transpose) exists"
            raise ParseError(f"unknown attribute '.{attr}'; {hint}",
                             line=attr.line, column=attr.column, source=self.text)
        return ops.transpose(self._operand(node, meta))

    def indexing(self, meta, children):
        node, kind = children
        node = self._operand(node, meta)
        try:
            return ops.col(node) if kind == "column" else ops.row(node)
        except ShapeError as err:
            raise self._fail(err, meta)

    def column_index(self, meta, children):
        return "column"

    def row_index(self, meta, children):
        return "row"

    def keyword(self, meta, children):
        return (children[0], children[1])

    def arguments(self, meta, children):
        return children

    def call(self, meta, children):
        token, arguments = children
        name = ops.ALIASES.get(str(token), str(token))
        known = ops.function_names()
        if name not in known:
            written = first_argument(self.text[token.end_pos:meta.end_pos])
            hint = hints.function(name, written, arguments or [])
            raise NameResolutionError(f"unknown function '{token}'"
                                      + _suggest(str(token), known, hint),
                                      line=token.line, column=token.column, source=self.text)
        args, kwargs = [], {}
        for item in arguments or []:
            if isinstance(item, tuple):
                key, value = item
                if str(key) in kwargs:
                    raise ParseError(f"{token}() got '{key}' twice", line=key.line,
                                     column=key.column, source=self.text)
                kwargs[str(key)] = value
            elif kwargs:
                raise ParseError(f"{token}(): positional argument after a keyword",
                                 line=token.line, column=token.column, source=self.text)
            else:
                args.append(self._operand(item, token))
        try:
            return self._finite(self._apply(str(token), name, args, kwargs), token)
        except MatcalcError as err:
            raise self._fail(err, token)

    def _apply(self, written: str, name: str, args: list, kwargs: dict) -> Expr:
        op = ops.OPS.get(name)
        builder = ops.BUILDERS.get(name)
        if builder is not None:
            signature = inspect.signature(builder).parameters.values()
            allowed = {p.name: p.default for p in signature if p.default is not p.empty}
            nargs = sum(p.default is p.empty for p in signature)
        else:
            allowed, nargs = dict(op.params), op.nargs
        for key in kwargs:
            if key not in allowed:
                hint = hints.KEYWORDS.get(key, "")
                raise ParseError(f"{written}() has no keyword '{key}'"
                                 + (f"; it takes {', '.join(allowed)}" if allowed else "")
                                 + (f"; {hint}" if hint else ""))
        params = {key: self._axis(written, value) for key, value in kwargs.items()}
        if op is not None and op.dims:
            return self._with_dims(written, op, args)
        if len(args) != nargs:
            plural = "s" if nargs != 1 else ""
            hint = hints.positional_axis(written, allowed, [str(a) for a in args[nargs:]])
            raise ParseError(f"{written}() takes {nargs} argument{plural}, got {len(args)}"
                             + (f"; {hint}" if hint else ""))
        if builder is not None:
            return builder(*args, **params)
        return ops.func(name, *args, **params)

    def _axis(self, written, value):
        if value is NONE:
            return None
        if isinstance(value, Const) and value.value.is_Integer:
            return int(value.value)
        raise ParseError(f"{written}(): axis must be None or an integer")

    def _with_dims(self, written: str, op, args: list) -> Expr:
        count = 1 if op.name == "eye" else (1, 2)
        if len(args) not in ((count,) if isinstance(count, int) else count):
            raise ParseError(f"{written}() takes {'1' if count == 1 else '1 or 2'} "
                             f"dimension{'s' if count != 1 else ''}, got {len(args)}")
        shape = []
        for a in args:
            if not (isinstance(a, Const) and a.value.is_positive and
                    (a.value.is_Integer or (a.value.free_symbols and a.value.is_integer))):
                raise ParseError(f"{written}() takes dimensions (names, positive integers "
                                 "or products of them)")
            shape.append(a.value)
        if op.name == "eye":
            return ops.eye(shape[0])
        return ops.ones(tuple(shape)) if op.name == "ones" else ops.zeros(tuple(shape))


class _ProblemBuilder:
    """Walks the statements in order, declaring names and building nodes."""

    def __init__(self, text: str, filename: str | None):
        self.text = text
        self.filename = filename
        self.variables: dict[str, Var] = {}
        self.dims: dict[str, sympy.Symbol] = {}
        self.intermediates: dict[str, Expr] = {}
        self.places: dict[str, tuple[int, int]] = {}
        self.output: tuple[str, Expr] | None = None
        self.wrt: list[Token] | None = None
        self.result_seen: Token | None = None
        self.names: dict[str, Expr] = {}
        self.values: dict[Expr, float | None] = {}

    def error(self, cls, message: str, token) -> MatcalcError:
        return cls(message, line=token.line, column=token.column, source=self.text)

    def scope(self) -> dict[str, Expr]:
        """Every name declared so far (dimensions, variables, intermediates),
        kept as they are declared: a statement costs no more than its text."""
        return self.names

    def claim(self, token: Token, what: str) -> None:
        name = str(token)
        if name in self.places or name in self.dims:
            line, col = self.places.get(name, (None, None))
            where = f" (line {line})" if line else " as a dimension"
            raise self.error(NameResolutionError,
                             f"'{name}' is already declared{where}; cannot declare {what}",
                             token)
        if name in RESERVED:
            raise self.error(NameResolutionError, f"'{name}' is reserved; choose another name",
                             token)
        self.places[name] = (token.line, token.column)

    def statement(self, tree: lark.Tree) -> None:
        if self.result_seen is not None:
            raise self.error(ParseError, "a bare expression must be the last statement; "
                             "give it a name (name = expression)", self.result_seen)
        getattr(self, "_" + tree.data)(tree)

    def _decl(self, tree):
        *names, shape_tree = tree.children
        shape, structure, domain = self.shape(shape_tree)
        for token in names:
            self.claim(token, "a variable")
            self.variables[str(token)] = var(str(token), shape, structure, domain)
            self.names[str(token)] = self.variables[str(token)]

    def shape(self, tree) -> tuple[tuple, str, str]:
        """The declared shape, structure ('', 'symmetric' or 'spd') and
        domain ('', 'positive', 'sign' or 'onehot')."""
        words = {t.type: t for t in tree.children if t.type in ("DOMAIN", "STRUCTURE")}
        tree.children = [t for t in tree.children if t.type not in ("DOMAIN", "STRUCTURE")]
        structure, domain = (str(words[k]) if k in words else "" for k in ("STRUCTURE", "DOMAIN"))
        if tree.data == "scalar_shape":
            if domain == "onehot":
                raise self.error(ShapeError, "a onehot variable is a vector or a matrix "
                                 "(e.g. Y: N x K onehot)", words["DOMAIN"])
            return (), "", domain
        if structure and (len(tree.children) != 2 or tree.children[0] != tree.children[1]):
            raise self.error(ShapeError, f"a {structure} matrix must be square "
                             "(e.g. S: D x D symmetric)", words["STRUCTURE"])
        if structure and domain and (domain, structure) not in DOMAIN_WITH_STRUCTURE:
            raise self.error(ShapeError, f"a {structure} matrix cannot also be {domain} (a "
                             "symmetric or spd matrix may be positive, a symmetric one "
                             "sign)", words["DOMAIN"])
        if len(tree.children) > 2:
            raise self.error(ShapeError, "only scalars, vectors and matrices "
                             "(at most two dimensions)", tree.children[2])
        shape = []
        for token in tree.children:
            if token.type == "INT":
                if int(token) < 1:
                    raise self.error(ShapeError, "a dimension must be a positive integer", token)
                shape.append(dim(int(token)))
                continue
            name = str(token)
            if name in self.variables or name in self.intermediates:
                raise self.error(NameResolutionError,
                                 f"'{name}' is a variable, not a dimension", token)
            if name in DOMAIN_WORDS:
                example = "S: D x D" if name in ("symmetric", "spd") else "x: N"
                raise self.error(ShapeError, f"'{name}' follows the shape: write "
                                 f"{example} {name}", token)
            self.check_dimension(token)
            if name not in self.dims:
                self.dims[name] = dim(name)
                self.names[name] = const(self.dims[name])
            shape.append(self.dims[name])
        return tuple(shape), structure, domain

    def check_dimension(self, token: Token) -> None:
        """Refuse a reserved word, and a name that reads as two dimensions
        glued together (`NxD`: one dimension here, a matrix in `3x4`)."""
        if str(token) in RESERVED:
            raise self.error(NameResolutionError, f"'{token}' is reserved; choose another "
                             "name for the dimension", token)
        glued = glued_dimensions(str(token))
        if glued is not None:
            raise self.error(ParseError, f"'{token}' reads as {glued}: write '{glued}' "
                             "(x between spaces) for a matrix, or name the dimension "
                             f"without an x between letters (such as "
                             f"'{str(token).replace('x', '')}') for a vector", token)

    def expression(self, tree) -> Expr:
        too_deep = ParseError("expression too deeply nested", line=tree.meta.line,
                              column=tree.meta.column, source=self.text)
        try:
            node = _ExprBuilder(self.scope(), self.text, self.values).transform(tree)
        except lark.exceptions.VisitError as err:
            if isinstance(err.orig_exc, MatcalcError):
                raise err.orig_exc from None
            if isinstance(err.orig_exc, RecursionError):
                raise too_deep from None
            raise
        except RecursionError:
            raise too_deep from None
        return _operand(node, tree.meta, self.text)

    def _assign(self, tree):
        token, expr_tree = tree.children
        node = self.expression(expr_tree)
        self.claim(token, "an intermediate")
        node = ops.named(str(token), node)
        self.intermediates[str(token)] = self.names[str(token)] = node
        self.output = (str(token), node)

    def _result(self, tree):
        self.output = ("f", self.expression(tree.children[0]))
        self.result_seen = Token("NAME", "", line=tree.meta.line, column=tree.meta.column)

    def _wrt(self, tree):
        keyword, *names = tree.children
        if self.wrt is not None:
            raise self.error(ParseError, "only one 'wrt' line", keyword)
        self.wrt = names

    def problem(self) -> Problem:
        if self.output is None:
            if not self.variables:
                raise ParseError("empty problem: declare variables and write a function, "
                                 "e.g. 'X: N x D' then 'f = sum(X ** 2)'")
            raise ParseError("no function: write 'name = expression' or an expression "
                             "after the declarations")
        name, output = self.output
        wrt = tuple(str(t) for t in self.wrt) if self.wrt is not None else _default_wrt(self)
        for token in self.wrt or ():
            if str(token) not in self.variables:
                raise self.error(NameResolutionError, _not_a_variable(
                    str(token), self.variables, self.intermediates, "not declared"), token)
        if len(set(wrt)) != len(wrt):
            raise self.error(ParseError, "a name appears twice in 'wrt'", self.wrt[0])
        return Problem(dict(self.variables), dict(self.dims), dict(self.intermediates),
                       output, name, wrt, self.text, self.filename)


def _not_a_variable(name: str, variables, intermediates, undeclared: str) -> str:
    """Why `wrt name` is wrong: an intermediate, or a name not declared."""
    if name in intermediates:
        shown = ", ".join(list(variables)[:6]) + (", ..." if len(variables) > 6 else "")
        return (f"wrt '{name}': {name} is an intermediate, not a variable; matcalc "
                f"differentiates by declared variables ({shown}), through {name}")
    return f"wrt '{name}': {undeclared}" + _suggest(name, variables)


def parse(text: str, filename: str | None = None) -> Problem:
    """Parse a problem (declarations, intermediates, function, `wrt`)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise ParseError(f"not UTF-8 text (byte {err.start})") from None
    if not isinstance(text, str):
        raise MatcalcError(f"a problem is text, not {type(text).__name__}")
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some editors write
    try:
        try:
            tree = _lark().parse(check_size(text))
        except lark.exceptions.LarkError as err:
            raise _syntax_error(err, text) from None
        builder = _ProblemBuilder(text, filename)
        for stmt in tree.children:
            builder.statement(stmt)
        return builder.problem()
    except MatcalcError as err:
        if err.filename is None:
            err.filename = filename
        raise


def parse_expr(text: str, scope: dict[str, Expr]) -> Expr:
    """Parse one expression over the given names (variables, dimensions)."""
    try:
        tree = _lark().parse(check_size(text))
    except lark.exceptions.LarkError as err:
        raise _syntax_error(err, text) from None
    statements = tree.children
    if len(statements) != 1 or statements[0].data != "result":
        raise ParseError("expected one expression")
    return _ExpressionBuilder(text, scope).expression(statements[0].children[0])


class _ExpressionBuilder(_ProblemBuilder):
    """Builds one expression over names given beforehand (`parse_expr`)."""

    def __init__(self, text: str, scope: dict[str, Expr]):
        super().__init__(text, None)
        self.given = scope

    def scope(self) -> dict[str, Expr]:
        return dict(self.given)


def _default_wrt(builder) -> tuple[str, ...]:
    """Every variable but those of discrete values (sign, onehot: data, such
    as labels), unless there is nothing else."""
    names = tuple(n for n, v in builder.variables.items() if v.domain not in ("sign", "onehot"))
    return names or tuple(builder.variables)


def check_wrt(problem: Problem, wrt) -> tuple[str, ...]:
    """Validate a list of variable names (or a comma-separated string)."""
    if isinstance(wrt, str):
        names = [w.strip() for w in wrt.split(",")]
    else:
        try:
            names = list(wrt)
        except TypeError:
            names = None
    if names is None or not all(isinstance(n, str) for n in names):
        raise NameResolutionError(f"wrt must be variable names, got {wrt!r}")
    if not any(names):
        raise NameResolutionError("wrt is empty: name the variables to differentiate by, "
                                  f"e.g. {', '.join(list(problem.variables)[:2])}")
    if "" in names:
        raise NameResolutionError(f"wrt {wrt!r} has an empty name: write the names "
                                  "separated by commas, e.g. W1,b1")
    for name in names:
        if name not in problem.variables:
            raise NameResolutionError(_not_a_variable(
                name, problem.variables, problem.intermediates, "not a declared variable"))
    if len(set(names)) != len(names) or not names:
        raise NameResolutionError("wrt needs distinct variable names")
    return tuple(names)


provide(parse_expr, check_wrt)  # Problem.expr and Problem.with_wrt
