"""Text to a problem: declarations, intermediates, the function and `wrt`.

The statements are parsed by `grammar`, their expressions built into typed
graph nodes by `expressions`; this module declares the names in order and
checks the shapes and domains declared.
"""

from __future__ import annotations

import os
import re

import lark
import sympy
from lark import Token

from .. import ops
from ..errors import MatcalcError, NameResolutionError, ParseError, ShapeError
from ..hooks import provide
from ..ir.expr import Apply, Expr, Var, apply, const, is_op, rewrite, var
from ..ir.problem import Problem
from ..ir.shapes import dim
from .expressions import ExprBuilder, operand, suggest
from .values import CONSTANTS, KEYWORD_VALUES, size_value
from .grammar import syntax_tree
from .reading import glued_dimensions
from . import written  # noqa: F401  (provides written_expr)


# The words that say what values a variable takes, after its shape; a
# symmetric or spd matrix may also be positive (entrywise), a symmetric one sign.
DOMAIN_WORDS = ("positive", "sign", "onehot", "symmetric", "spd")
DOMAIN_WITH_STRUCTURE = {("positive", "symmetric"), ("positive", "spd"), ("sign", "symmetric")}

RESERVED = ("wrt", "scalar", "None")
# Names a product of dimensions cannot declare as new dimensions.
NOT_DIMENSIONS = (*RESERVED, *CONSTANTS, *KEYWORD_VALUES)


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
        self.output_at: tuple[int, int] = (1, 1)  # where the function's statement starts
        self.wrt: list[Token] | None = None
        self.result_seen: Token | None = None
        self.names: dict[str, Expr] = {}
        self.written: dict[str, str] = {}
        self.values: dict[Expr, float | None] = {}
        self.products: dict[str, Token] = {}  # dimensions a product declared (D = H * E)

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
        if self.result_seen is not None and tree.data != "wrt":
            raise self.error(ParseError, "a bare expression must be the last statement "
                             "(but for wrt); give it a name (name = expression)",
                             self.result_seen)
        getattr(self, "_" + tree.data)(tree)

    def _decl(self, tree):
        *names, shape_tree = tree.children
        shape, structure, domain = self.shape(shape_tree)
        for token in names:
            self.claim(token, "a variable")
            self.variables[str(token)] = var(str(token), shape, structure, domain)
            self.names[str(token)] = self.variables[str(token)]

    def check_separators(self, separators: list) -> None:
        """`*` separates dimensions as `x` does; a shape that mixes them, as
        `D x 4 * H`, most likely means a product (4H) by its `*`: refused."""
        if {str(t) for t in separators} - {"*"} and "*" in separators:
            star = next(t for t in separators if t == "*")
            raise self.error(ShapeError, "a shape mixes x and *, which both separate "
                             "dimensions (D x 4 * H is D x 4 x H); a product of "
                             "dimensions is named first, as F = 4 * H, then D x F", star)

    def shape(self, tree) -> tuple[tuple, str, str]:
        """The declared shape, structure ('', 'symmetric' or 'spd') and
        domain ('', 'positive', 'sign' or 'onehot')."""
        words = {t.type: t for t in tree.children if t.type in ("DOMAIN", "STRUCTURE")}
        self.check_separators([t for t in tree.children if t.type == "TIMES"])
        tree.children = [t for t in tree.children
                         if t.type not in ("DOMAIN", "STRUCTURE", "TIMES")]
        structure, domain = (str(words[k]) if k in words else "" for k in ("STRUCTURE", "DOMAIN"))
        if tree.data == "scalar_shape":
            if domain == "int":
                raise self.error(ShapeError, "an integer input is an array of indices "
                                 "(e.g. tokens: B x T int)", words["DOMAIN"])
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
        shape = []
        for token in tree.children:
            if token.type == "INT":
                if int(token) < 1:
                    raise self.error(ShapeError, "a dimension must be a positive integer", token)
                shape.append(dim(int(token)))
                continue
            name = str(token)
            if (size := self.defined_size(name)) is not None:
                shape.append(size)
                continue
            self.check_fixed_size(name)
            if name in self.variables or name in self.intermediates:
                what = "a variable" if name in self.variables else "an intermediate (a value)"
                raise self.error(NameResolutionError, f"'{name}' is {what}, not a dimension",
                                 token)
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

    def check_fixed_size(self, name: str) -> None:
        """Refuse a size fixed by a number that is not a positive integer
        (H = 0, H = 2.5), at its definition."""
        node = self.intermediates.get(name)
        value = size_value(node) if node is not None else None
        if value is not None and value.is_number:
            line, column = self.places[name]
            raise ShapeError(f"a fixed size must be a positive integer, got {self.written[name]}",
                             line=line, column=column, source=self.text)

    def defined_size(self, name: str):
        """The size an intermediate defined as a product of dimensions and
        positive integers stands for (D = H * E, H = 4), else None."""
        node = self.intermediates.get(name)
        value = size_value(node) if node is not None else None
        return value if value is not None and value.is_integer and value.is_positive else None

    def check_readable(self) -> None:
        """Refuse a dimension declared by a product that the inputs' shapes
        cannot give (D = H * E with neither H nor E an axis of its own)."""
        for name in sorted(set(self.products) - readable(self.variables, self.dims)):
            raise self.error(ShapeError, f"the size {name} cannot be read from the inputs' "
                             f"shapes: fix it by a number (as '{name} = 4' before the "
                             f"product) or give an input an axis {name}", self.products[name])

    def new_dimensions(self, tree) -> None:
        """Declare the names of `D = H * E` not yet declared as dimensions,
        where its right side is a product of names and integers that are
        dimensions or new (so D is a product of dimensions)."""
        factors, stack = [], [tree]
        while stack:
            node = stack.pop()
            if node.data == "binop" and str(node.children[1]) == "*":
                stack += [node.children[0], node.children[2]]
            elif node.data in ("name", "number"):
                factors.append(node.children[0])
            else:
                return
        names = [t for t in factors if t.type == "NAME"]
        if any(str(t) in NOT_DIMENSIONS or str(t) in self.names and str(t) not in self.dims
               and self.defined_size(str(t)) is None for t in names):
            return
        for token in names:
            if str(token) not in self.names:
                self.check_dimension(token)
                self.products[str(token)] = token
                self.dims[str(token)] = dim(str(token))
                self.names[str(token)] = const(self.dims[str(token)])

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

    def expression(self, tree, condition: bool = False) -> Expr:
        """The node of an expression; a comparison only where `condition`
        (a named condition, `mask = X > 0`)."""
        too_deep = ParseError("expression too deeply nested", line=tree.meta.line,
                              column=tree.meta.column, source=self.text)
        try:
            node = ExprBuilder(self.scope(), self.text, self.values).transform(tree)
        except lark.exceptions.VisitError as err:
            if isinstance(err.orig_exc, MatcalcError):
                raise err.orig_exc from None
            if isinstance(err.orig_exc, RecursionError):
                raise too_deep from None
            raise
        except RecursionError:
            raise too_deep from None
        return operand(node, tree.meta, self.text, condition)

    def _assign(self, tree):
        token, expr_tree = tree.children
        self.new_dimensions(expr_tree)
        node = self.expression(expr_tree, condition=True)
        self.claim(token, "an intermediate")
        node = ops.named(str(token), node)
        self.intermediates[str(token)] = self.names[str(token)] = node
        self.output, self.output_at = (str(token), node), (token.line, token.column)
        self.written[str(token)] = as_written(self.text, token.end_pos, tree.meta.end_pos)

    def _result(self, tree):
        self.output = ("f", self.expression(tree.children[0]))
        self.written["f"] = as_written(self.text, tree.meta.start_pos, tree.meta.end_pos)
        self.result_seen = Token("NAME", "", line=tree.meta.line, column=tree.meta.column)
        self.output_at = (tree.meta.line, tree.meta.column)

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
        line, column = self.output_at
        if not self.variables:
            raise ParseError("no variables to differentiate by: declare one, e.g. 'x: N'",
                             line=line, column=column, source=self.text)
        if is_op(ops.unnamed(output), "compare"):
            raise ParseError(f"the function {name} is a comparison, a condition: use it as "
                             "where(cond, a, b)'s condition", line=line, column=column,
                             source=self.text)
        self.check_readable()
        wrt = tuple(str(t) for t in self.wrt) if self.wrt is not None else _default_wrt(self)
        for token in self.wrt or ():
            if str(token) not in self.variables:
                raise self.error(NameResolutionError, _not_a_variable(
                    str(token), self.variables, self.intermediates, "not declared", self.dims),
                    token)
            if self.variables[str(token)].domain == "int":
                raise self.error(ParseError, _integer_wrt(str(token)), token)
        if len(set(wrt)) != len(wrt):
            raise self.error(ParseError, "a name appears twice in 'wrt'", self.wrt[0])
        output, intermediates = shared_names(output, self.intermediates)
        return Problem(dict(self.variables), dict(self.dims), intermediates,
                       output, name, wrt, self.text, self.filename, dict(self.written))


def shared_names(output: Expr, intermediates: dict) -> tuple[Expr, dict]:
    """The output and the intermediates with each value a builder made again
    (var's X − mean(X) after the user's m = mean(X)), or its negation,
    referring to the name of an earlier line, so it is one node, computed
    once."""
    alias: dict[Expr, tuple] = {}
    renamed: dict[Expr, Expr] = {}      # each line's name node as first built -> as shared
    for name, node in intermediates.items():
        renamed[node] = _aliased(node, alias, renamed)
        for value in {node.args[0], renamed[node].args[0]} if is_op(node, "name") else ():
            c, rest = ops._coefficient(value)
            if isinstance(rest, Apply) and not is_op(rest, "name"):
                alias.setdefault(rest, (c, renamed[node]))
    return _aliased(output, alias, renamed), {k: renamed[v] for k, v in intermediates.items()}


def _aliased(root: Expr, alias: dict, renamed: dict) -> Expr:
    """`root` with an earlier line's name node as shared, and each argument
    ±c r replaced by ±n where the name n stands for c r (a name's own value
    stays)."""
    def visit(node: Expr, args: tuple) -> Expr:
        if not isinstance(node, Apply):
            return node
        if node.op == "name":
            return node if args == node.args else apply(ops.OPS["name"], args, node.params)
        return ops.rebuild(node, tuple(_multiple(a, alias) for a in args))
    return rewrite([root], visit, renamed)[0]


def _multiple(a: Expr, alias: dict) -> Expr:
    """`a` = ±c r as ±n for a name n = c r (see `_aliased`), else `a`."""
    k, rest = ops._coefficient(a)
    c, name = alias.get(rest, (None, None))
    if name is None or k not in (c, -c):
        return a
    return name if k == c else ops.neg(name)


def readable(variables, dims: dict) -> set:
    """The dimensions the inputs' shapes give: those an axis has alone, then
    each one of a product whose other factors are given (D = H * E)."""
    known = {str(d) for v in variables.values() for d in v.shape if d.is_Symbol}
    grown = True
    while grown:
        grown = False
        for d in (d for v in variables.values() for d in v.shape):
            unknown = [s for s in d.free_symbols if str(s) not in known]
            if len(unknown) == 1 and unknown[0] not in sympy.cancel(d / unknown[0]).free_symbols:
                known.add(str(unknown[0]))
                grown = True
    return known & set(dims)


def as_written(text: str, start: int, end: int) -> str:
    """The expression in text[start:end] (after `name =` for a definition),
    its comments, line continuations and runs of white space taken out."""
    body = re.sub(r"#[^\n]*|\\\r?\n", " ", text[start:end])
    return " ".join(body.split()).removeprefix("=").strip()


def _not_a_variable(name: str, variables, intermediates, undeclared: str, dims=()) -> str:
    """Why `wrt name` is wrong: a dimension, an intermediate, or a name not
    declared."""
    if name in dims:
        return (f"wrt '{name}': {name} is a dimension (a size), not a variable; the "
                f"variables are {', '.join(variables)}")
    if name in intermediates:
        shown = ", ".join(list(variables)[:6]) + (", ..." if len(variables) > 6 else "")
        return (f"wrt '{name}': {name} is an intermediate, not a variable; matcalc "
                f"differentiates by declared variables ({shown}), through {name}")
    return f"wrt '{name}': {undeclared}" + suggest(name, variables)


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
        tree = syntax_tree(text)
        builder = _ProblemBuilder(text, filename)
        for stmt in tree.children:
            builder.statement(stmt)
        return builder.problem()
    except MatcalcError as err:
        if err.filename is None:
            err.filename = filename
        if "\n" not in text.strip() and os.path.isfile(text.strip()):
            err.message += "; parse takes the problem's text: parse(open(path).read())"
            err.args = (err.message,)
        raise


def parse_pieces(pieces: list[tuple[str, str, str]], filename: str | None = None) -> Problem:
    """Parse the lines `prefix + text` of `pieces`, (label, prefix, text)
    each, given apart (the CLI's -d and -e, `matcalc.problem`'s arguments):
    an error points into the text of the piece it is in, which it shows, its
    label the file name (a place in the prefix is the text's first column;
    one past the last line is in the last piece). `filename` names the
    rest."""
    try:
        return parse("\n".join(prefix + text for _, prefix, text in pieces), filename)
    except MatcalcError as err:
        if err.line is None:
            raise
        named = re.match(r"\s*(\w+)\s*=(?!=)", pieces[-1][2])
        if named and pieces[-1][1] and err.line == text_lines(pieces):
            err.message += f"; {pieces[-1][0]} is an expression: drop '{named.group(1)} ='"
            err.args = (err.message,)
        first = 1
        for k, (label, prefix, text) in enumerate(pieces):
            count = text.count("\n") + 1
            if err.line < first + count or k == len(pieces) - 1:
                if err.line == first:
                    err.column = max((err.column or 1) - len(prefix), 1)
                err.line, err.filename, err.source = err.line - first + 1, label, text
                raise err from None
            first += count
        raise


def text_lines(pieces) -> int:
    """The line of the joined text where the last piece starts."""
    return sum(text.count("\n") + 1 for _, _, text in pieces[:-1]) + 1


def parse_expr(text: str, scope: dict[str, Expr]) -> Expr:
    """Parse one expression over the given names (variables, dimensions)."""
    statements = syntax_tree(text).children
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

    def expression(self, tree, condition: bool = True) -> Expr:
        """One expression, a comparison too (`p.expr("x > 0")`)."""
        return super().expression(tree, condition)


def _default_wrt(builder) -> tuple[str, ...]:
    """Every variable but those of discrete values (sign, onehot: data, such
    as labels), unless there is nothing else; never an integer input."""
    names = tuple(n for n, v in builder.variables.items()
                  if v.domain not in ("sign", "onehot", "int"))
    return names or tuple(n for n, v in builder.variables.items() if v.domain != "int")


def _integer_wrt(name: str) -> str:
    return (f"wrt '{name}': {name} is an integer input (indices), which has no "
            "derivative; differentiate by the arrays it indexes")


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
                name, problem.variables, problem.intermediates, "not a declared variable",
                problem.dims))
        if problem.variables[name].domain == "int":
            raise NameResolutionError(_integer_wrt(name))
    if len(set(names)) != len(names) or not names:
        raise NameResolutionError("wrt needs distinct variable names")
    return tuple(names)


provide(parse_expr, check_wrt)  # Problem.expr and Problem.with_wrt
