"""Expression trees to graph nodes: the Lark `Transformer` that resolves
names and builds each node with the builders of `ops`, so shapes are checked
as nodes are built and every error carries its line and column."""

from __future__ import annotations

import difflib
import inspect
import math

import sympy
from lark import v_args
from lark.visitors import Transformer_NonRecursive

from . import hints
from .. import ops
from ..errors import DomainError, MatcalcError, NameResolutionError, ParseError, ShapeError
from ..ir.expr import Const, Expr, Var, const, is_op
from ..ir.shapes import fmt
from ..ops.indexing import size_value
from .reading import constant_value, first_argument


def suggest(name: str, known, hint: str = "") -> str:
    """`hint` (the fix from `hints`) if any, else the closest known name:
    one that differs only in case first (`W` for `w`)."""
    if hint:
        return f"; {hint}"
    close = [k for k in known if k.lower() == name.lower()] or \
        difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def operand(node, where, text: str, condition: bool = False):
    """`node`, refused where it is a keyword value (None, True, False, a
    string) or, unless `condition`, a comparison (a condition, no number)."""
    if node is NONE:
        raise ParseError("'None' is only a keyword value, as in axis=None",
                         line=where.line, column=where.column, source=text)
    if isinstance(node, String):
        raise ParseError("a string is only a keyword value, as in norm(X, ord='fro')",
                         line=node.token.line, column=node.token.column, source=text)
    if isinstance(node, Tuple):
        raise ParseError("a tuple is only a function's argument, as in sum(X, axis=(0, 1)) "
                         "or reshape(X, (N, D))", line=where.line, column=where.column,
                         source=text)
    if isinstance(node, _KeywordValue):
        raise NameResolutionError(f"unknown name '{node.text}'; {hints.NAMES[node.text]}",
                                  line=where.line, column=where.column, source=text)
    if isinstance(node, Var) and node.domain == "int":
        raise ParseError(f"{node.name} is an integer input: it is only an index, as in "
                         f"E[{node.name}] (an embedding lookup) or eye(C)[{node.name}]",
                         line=where.line, column=where.column, source=text)
    if not condition and is_op(ops.unnamed(node), "compare"):
        raise ParseError("a comparison is a condition, not a number; use it as "
                         "where(cond, a, b)'s condition, as in where(x > 0, x, 0)",
                         line=where.line, column=where.column, source=text)
    return node


def _subscript(item):
    """One subscript as Python's indexing takes it: an int, a slice of ints,
    None or Ellipsis."""
    if item is NONE:
        return None
    if item is ELLIPSIS:
        return Ellipsis
    if isinstance(item, Slice):
        return slice(*(None if p is None else _whole(p) for p in
                       (item.start, item.stop, item.step)))
    return _whole(item)


def _whole(node) -> int:
    """An index or slice bound: a fixed integer, or a whole expression in
    the dimensions (X[:N], as a concatenate's gradient prints)."""
    value = size_value(node)
    if value is not None and value.is_integer:
        return int(value) if value.is_Integer else value
    raise ShapeError("an index is an integer (a slice's bounds too), a slice, None, '...' "
                     "or an integer array input (as E[tokens])")


# Functions whose argument after the first may be a tuple of sizes, and
# those whose first argument is a tuple of arrays.
SHAPE_ARGUMENTS = ("reshape",)
ARRAY_TUPLES = ("concatenate", "stack")


def _sizes(item: "Tuple", text: str) -> tuple:
    """A tuple of sizes (reshape's): dimensions, products of them,
    integers, or -1."""
    out = []
    for node in item.items:
        value = size_value(node)
        if value is None or not value.is_integer:
            hint = (f" ({value} is not a whole number of the dimensions: declare the "
                    "product first, as D = H * E)" if value is not None else "")
            raise ShapeError("a size is a dimension, a product of them, an integer or -1"
                             + hint, line=item.where.line, column=item.where.column,
                             source=text)
        out.append(value)
    return tuple(out)


class _KeywordValue:
    """`None` (or an undeclared `True`, `False`): only a keyword value, so
    `axis=None` works and `keepdims=True` is refused by its keyword."""

    def __init__(self, text: str):
        self.text = text


class String(_KeywordValue):
    """A string, such as 'fro': only a keyword value (norm's ord=); `token`
    says where it is written."""

    def __init__(self, token):
        super().__init__(str(token))
        self.token = token

    @property
    def value(self) -> str:
        return self.text[1:-1]


class Tuple:
    """`(a, b, ...)`: axes or a shape, only ever a function's argument;
    `items` are the nodes, `where` the position of its '('."""

    def __init__(self, items: tuple, where):
        self.items = items
        self.where = where


class Slice:
    """`start:stop:step` in a subscript; each part a node or None."""

    def __init__(self, start, stop, step):
        self.start, self.stop, self.step = start, stop, step

    @property
    def whole(self) -> bool:
        """Whether it is `:` (every entry, in order)."""
        return self.start is None and self.stop is None and self.step is None


# Functions with a string or integers beside their operands (`_contraction`).
CONTRACTIONS = ("einsum", "transpose", "swapaxes")
NONE = _KeywordValue("None")
ELLIPSIS = _KeywordValue("...")
# Named constants, unless the problem declares the name.
CONSTANTS = {"pi": sympy.pi, "e": sympy.E}
KEYWORD_VALUES = {v.text: v for v in (NONE, _KeywordValue("True"), _KeywordValue("False"))}


@v_args(meta=True)
class ExprBuilder(Transformer_NonRecursive):
    """Builds graph nodes from an expression tree, resolving names in `scope`."""

    def __init__(self, scope: dict[str, Expr], text: str, values: dict | None = None):
        super().__init__(visit_tokens=False)
        self.scope = scope
        self.text = text
        self.values: dict[Expr, float | None] = {} if values is None else values
        self.conditions: dict[Expr, object] = {}  # each comparison's operator token

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
        if node is None and str(token) in CONSTANTS:
            return const(CONSTANTS[str(token)])
        if node is None:
            raise NameResolutionError(f"unknown name '{token}'" + suggest(
                str(token), self.scope, hints.NAMES.get(str(token), "")),
                line=token.line, column=token.column, source=self.text)
        return node

    def _operand(self, node, where, condition: bool = False):
        if is_op(node, "compare"):  # a misplaced comparison is shown at its operator
            where = self.conditions.get(node, where)
        return operand(node, where, self.text, condition)

    def string(self, meta, children):
        return String(children[0])

    def compare(self, meta, children):
        """`a < b` (<=, >, >=, ==, !=): a condition, for where's first argument."""
        left, op, right = children
        left, right = self._operand(left, meta), self._operand(right, meta)
        try:
            node = ops.compare(left, right, str(op))
            self.conditions[node] = op
            return node
        except ShapeError:
            lhs = " ".join(self.text[meta.start_pos:op.start_pos].split())
            rhs = " ".join(self.text[op.end_pos:meta.end_pos].split())
            raise ShapeError(f"shape mismatch in '{op}': {lhs} is {fmt(left.shape)} "
                             f"but {rhs} is {fmt(right.shape)}", line=op.line,
                             column=op.column, source=self.text)

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
                       f"but {rhs} is {fmt(right.shape)}"
                       + hints.product(op, left, right, lhs, rhs))
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

    def tuple(self, meta, children):
        return Tuple(tuple(self._operand(c, meta) for c in children if c is not None), meta)

    def slice(self, meta, children):
        return Slice(*(None if c is None else self._operand(c, meta) for c in children))

    def ellipsis(self, meta, children):
        return ELLIPSIS

    def subscripts(self, meta, children):
        return children

    def indexing(self, meta, children):
        node, subscripts = children
        node = self._operand(node, meta)
        try:
            return self._index(node, subscripts)
        except MatcalcError as err:
            raise self._fail(err, meta)

    def _index(self, node: Expr, subscripts: list) -> Expr:
        """`node[subscripts]`: NumPy's basic indexing (integers, slices,
        None, '...'), or a gather by one integer array input (E[tokens])."""
        arrays = [s for s in subscripts if isinstance(s, Expr) and not isinstance(s, Const)]
        if arrays:
            if len(subscripts) != 1:
                raise ParseError("an integer array indexes the first axis alone, as in "
                                 "E[tokens]; index the other axes in a second step")
            return ops.gather(node, arrays[0])
        return ops.index(node, [_subscript(s) for s in subscripts])

    def at_update(self, meta, children):
        """`zeros(S).at[key].set(g)`, `zeros(S).at[idx].add(g)`: the adjoints
        of indexing and gather, as JAX writes them (and gradients print)."""
        target, _, subscripts, method, value = children
        target, value = self._operand(target, meta), self._operand(value, meta)
        try:
            if not is_op(target, "zeros") or str(method) not in ("set", "add"):
                raise ParseError("'.at[...]' is only zeros(...).at[key].set(g) or "
                                 "zeros(...).at[tokens].add(g), the adjoints of indexing "
                                 "and gather")
            arrays = [s for s in subscripts if isinstance(s, Expr) and not isinstance(s, Const)]
            if arrays and len(subscripts) == 1 and str(method) == "add":
                return ops.scatter_add(value, arrays[0], target.shape)
            key = ops.normal_key(target.shape, [_subscript(s) for s in subscripts])
            return ops.unindex(value, target.shape, key)
        except MatcalcError as err:
            raise self._fail(err, meta)

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
                                      + suggest(str(token), known, hint),
                                      line=token.line, column=token.column, source=self.text)
        if name in CONTRACTIONS:
            return self._contraction(token, name, arguments or [])
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
            elif name == "where" and not args and not is_op(ops.unnamed(item), "compare"):
                raise ParseError("where(cond, a, b) takes a comparison as its condition, "
                                 "such as x > 0", line=token.line, column=token.column,
                                 source=self.text)
            elif isinstance(item, Tuple) and name in SHAPE_ARGUMENTS and args:
                args.append(_sizes(item, self.text))
            elif isinstance(item, Tuple) and name in ARRAY_TUPLES and not args:
                args.append([self._operand(a, token) for a in item.items])
            else:
                args.append(self._operand(item, token, name == "where" and not args))
        try:
            return self._finite(self._apply(str(token), name, args, kwargs), token)
        except MatcalcError as err:
            raise self._fail(err, token)

    def _contraction(self, token, name: str, arguments: list) -> Expr:
        """einsum("ij,jk->ik", A, B), transpose(X, axes) and swapaxes(X, a, b):
        a string or integers beside the operands, each error at its place."""
        where = token
        try:
            if name == "einsum":
                if not arguments or not isinstance(arguments[0], String):
                    raise ParseError('einsum takes its subscripts first, as a string: '
                                     'einsum("ij,jk->ik", A, B)')
                where = arguments[0].token
                operands = [self._operand(a, token) for a in arguments[1:]
                            if not isinstance(a, tuple) or self._no_keyword(token, a)]
                return ops.einsum(arguments[0].value, *operands)
            positional = [a for a in arguments if not isinstance(a, tuple)]
            keywords = dict(a for a in arguments if isinstance(a, tuple))
            for key in keywords:
                if name != "transpose" or str(key) != "axes":
                    self._no_keyword(token, (key, None))
            x = self._operand(positional[0], token) if positional else None
            rest = [self._integers(token, a) for a in [*positional[1:], *keywords.values()]]
            if name == "transpose" and x is not None and len(rest) <= 1:
                return ops.permute(x, rest[0] if rest else None)
            if name == "swapaxes" and x is not None and len(rest) == 2:
                return ops.swapaxes(x, *rest)
            raise ParseError(f"{token}() takes " + ("(X) or (X, axes)" if name == "transpose"
                                                  else "(X, axis1, axis2)"))
        except MatcalcError as err:
            raise self._fail(err, where)

    def _no_keyword(self, token, item) -> bool:
        raise ParseError(f"{token}() takes no keyword '{item[0]}'", line=item[0].line,
                         column=item[0].column, source=self.text)

    def _integers(self, token, value):
        """An integer (an axis) or a tuple of integers (a permutation)."""
        if isinstance(value, Const) and value.value.is_Integer:
            return int(value.value)
        if isinstance(value, Tuple) and all(isinstance(v, Const) and v.value.is_Integer
                                            for v in value.items):
            return tuple(int(v.value) for v in value.items)
        raise ParseError(f"{token}() takes axes as integers, as in transpose(X, (0, 2, 1))")

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
        params = {key: self._keyword(written, key, value, allowed[key])
                  for key, value in kwargs.items()}
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

    def _keyword(self, written, key, value, default=None):
        """A keyword's value: None, an integer, a tuple of integers, a string
        where the keyword takes one (norm's ord='fro'), True or False for
        keepdims, a number where the default is one (elu's alpha=1.0)."""
        if isinstance(default, float):
            if isinstance(value, Const) and value.value.is_number:
                return float(value.value)
            raise ParseError(f"{written}(): {key} must be a number, as {key}={default}")
        if value is NONE:
            return None
        if isinstance(value, Const) and value.value.is_Integer:
            return int(value.value)
        if isinstance(value, Tuple) and all(isinstance(v, Const) and v.value.is_Integer
                                            for v in value.items):
            return tuple(int(v.value) for v in value.items)
        if isinstance(value, String) and key == "ord":
            return value.value
        if key == "keepdims" and any(value is KEYWORD_VALUES[b] for b in ("True", "False")):
            return value is KEYWORD_VALUES["True"]
        raise ParseError(f"{written}(): {key} must be "
                         + ("True or False" if key == "keepdims" else "None or an integer")
                         + (" or 'fro'" if key == "ord" else ""))

    def _with_dims(self, written: str, op, args: list) -> Expr:
        """`op` of the dimensions `args`: `op.dims` says how many it takes
        (its signature) and the shape they give."""
        accepted = inspect.signature(op.dims).parameters.values()
        least = sum(p.default is p.empty and p.kind != p.VAR_POSITIONAL for p in accepted)
        any_number = any(p.kind == p.VAR_POSITIONAL for p in accepted)
        most = len(args) if any_number else len(accepted)
        if not least <= len(args) <= most:
            counts = f"at least {least}" if any_number else \
                " or ".join(str(n) for n in range(least, most + 1))
            raise ParseError(f"{written}() takes {counts} "
                             f"dimension{'s' if (least if any_number else most) != 1 else ''}"
                             f", got {len(args)}")
        shape = []
        for a in args:
            # a whole expression in dimensions may be a slice's length (N - 1)
            if not (isinstance(a, Const) and (a.value.is_Integer and a.value.is_positive or (
                    a.value.free_symbols and a.value.is_integer
                    and a.value.is_positive is not False))):
                raise ParseError(f"{written}() takes dimensions (names, positive integers "
                                 "or products of them)")
            shape.append(a.value)
        return ops.constant_array(op.name, op.dims(*shape))
