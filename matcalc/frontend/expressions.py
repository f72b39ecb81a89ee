"""Expression trees to graph nodes: the Lark `Transformer` that resolves
names and builds each node with the builders of `ops`, so shapes are checked
as nodes are built and every error carries its line and column."""

from __future__ import annotations

import inspect
import math

import sympy
from lark import Token, v_args
from lark.visitors import Transformer_NonRecursive

from . import hints
from .. import ops
from ..errors import (DomainError, MatcalcError, NameResolutionError, ParseError, ShapeError,
                      closest)
from ..ir.expr import Const, Expr, Var, const, is_op
from ..ir.shapes import fmt
from .reading import argument_starts, constant_value, first_argument, place
from .values import (ARRAY_TUPLES, CONSTANTS, CONTRACTIONS, ELLIPSIS, KEYWORD_VALUES, NONE,
                     SHAPE_ARGUMENTS, Slice, String, Tuple, _KeywordValue, _sizes, _subscript)


def suggest(name: str, known, hint: str = "") -> str:
    """`hint` (the fix from `hints`) if any, else the closest known name
    (`errors.closest`)."""
    if hint:
        return f"; {hint}"
    close = closest(name, known)
    return f"; did you mean '{close}'?" if close else ""


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


@v_args(meta=True)
class ExprBuilder(Transformer_NonRecursive):
    """Builds graph nodes from an expression tree, resolving names in `scope`."""

    def __init__(self, scope: dict[str, Expr], text: str, values: dict | None = None):
        super().__init__(visit_tokens=False)
        self.scope = scope
        self.text = text
        self.values: dict[Expr, float | None] = {} if values is None else values
        self.conditions: dict[Expr, object] = {}  # each comparison's operator token
        self.primes: dict[int, Token] = {}  # each MATLAB-style transpose x', by its place

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
            before = self.text[self.text.rfind("\n", 0, token.start_pos) + 1:token.start_pos]
            raise NameResolutionError(f"unknown name '{token}'" + suggest(
                str(token), self.scope, hints.name(str(token), before)),
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
        if str(op) == "*" and left.shape and right.shape:
            self._no_matlab_product(meta, op)
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
        self.primes[children[1].start_pos] = children[1]
        return ops.transpose(self._operand(children[0], meta))

    def _no_matlab_product(self, meta, op) -> None:
        """Refuse `x' * A` and `A * x'` of arrays: MATLAB's matrix product,
        which is elementwise here (a vector's x' is x itself)."""
        lhs = self.text[meta.start_pos:op.start_pos].rstrip()
        prime = self.primes.get(meta.start_pos + len(lhs) - 1) or \
            self.primes.get(meta.end_pos - 1)
        if prime is None:
            return
        written = self.text[meta.start_pos:prime.start_pos] if prime.start_pos < op.start_pos \
            else self.text[op.end_pos:prime.start_pos]
        written = " ".join(written.split())
        raise ParseError(f"' is MATLAB's transpose, and * is elementwise here (as in NumPy): "
                         f"write {hints.postfixed(written)}, and @ for a matrix product (as in "
                         "x.T @ A @ x)", line=prime.line, column=prime.column, source=self.text)

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
            raise self._unknown_function(token, meta, arguments or [], known)
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
            elif name in SHAPE_ARGUMENTS and args:
                args.append(self._shape(item, token, meta, len(args)))
            elif isinstance(item, Tuple) and name in ARRAY_TUPLES and not args:
                args.append([self._operand(a, token) for a in item.items])
            elif name in ARRAY_TUPLES and not args and \
                    sum(not isinstance(a, tuple) for a in arguments) > 1:
                raise self._no_tuple(token, meta)
            elif isinstance(item, Tuple) and name in ops.OPS and ops.OPS[name].dims:
                args.extend(item.items)  # zeros((N, D)) is zeros(N, D), as NumPy's
            else:
                args.append(self._operand(item, token, name == "where" and not args))
        try:
            return self._finite(self._apply(str(token), name, args, kwargs), token)
        except MatcalcError as err:
            raise self._fail(err, token)

    def _unknown_function(self, token, meta, arguments: list, known) -> MatcalcError:
        """The error for a call of an unknown name: a variable called as
        MATLAB indexes (X(1, 2)), else the fix `hints` knows or the closest
        function."""
        node = self.scope.get(str(token))
        if isinstance(node, Expr) and node.shape:
            numbers = [a for a in arguments if isinstance(a, Const) and a.value.is_Integer]
            key = ", ".join(str(a.value - 1) for a in numbers) \
                if len(numbers) == len(arguments) and arguments else ", ".join("ijkl"[:node.ndim])
            what = "a variable" if isinstance(node, Var) else "an intermediate"
            return NameResolutionError(f"unknown function '{token}'; {token} is {what}: index "
                                       f"it as {token}[{key}] (square brackets, from 0)",
                                       line=token.line, column=token.column, source=self.text)
        written = first_argument(self.text[token.end_pos:meta.end_pos])
        hint = hints.function(str(token), written, arguments)
        return NameResolutionError(f"unknown function '{token}'"
                                   + suggest(str(token), known, hint),
                                   line=token.line, column=token.column, source=self.text)

    def _no_tuple(self, token, meta) -> MatcalcError:
        """The error for concatenate(X, Y): the arrays are one tuple."""
        text = self.text[token.end_pos:meta.end_pos]
        starts = argument_starts(text)
        parts = [" ".join(text[a:b].split()).removesuffix(",").strip()
                 for a, b in zip(starts, [*starts[1:], text.rfind(")")])]
        arrays = ", ".join(p for p in parts if "=" not in p)
        axis = ", ".join(p for p in parts if "=" in p) or "axis=0"
        return ParseError(f"{token}() takes the arrays as one tuple: write {token}(({arrays}), "
                          f"{axis})", line=token.line, column=token.column, source=self.text)

    def _argument_at(self, token, meta, k: int) -> Token:
        """Where the k-th argument (from 0) of the call at `token` starts."""
        starts = argument_starts(self.text[token.end_pos:meta.end_pos])
        offset = token.end_pos + starts[k] if k < len(starts) else token.start_pos
        line, column = place(self.text, offset)
        return Token("NAME", "", line=line, column=column)

    def _shape(self, item, token, meta, k: int) -> tuple:
        """reshape's sizes: a tuple of them, or one size as NumPy takes it
        (reshape(w, 6) is reshape(w, (6,)))."""
        if isinstance(item, Tuple):
            return _sizes(item, self.text)
        if isinstance(item, Const):
            return _sizes(Tuple((item,), self._argument_at(token, meta, k)), self.text)
        where = self._argument_at(token, meta, k)
        raise ShapeError(f"{token}'s shape is sizes (dimensions, products of them, integers "
                         "or -1), as in reshape(X, (N, D)), not an array",
                         line=where.line, column=where.column, source=self.text)

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
        for a in map(ops.unnamed, args):  # F = E * n names a product of dimensions
            # a whole expression in dimensions may be a slice's length (N - 1)
            if not (isinstance(a, Const) and (a.value.is_Integer and a.value.is_positive or (
                    a.value.free_symbols and a.value.is_integer
                    and a.value.is_positive is not False))):
                raise ParseError(f"{written}() takes dimensions (names, positive integers "
                                 "or products of them)")
            shape.append(a.value)
        return ops.constant_array(op.name, op.dims(*shape))
