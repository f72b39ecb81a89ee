"""The function as its user wrote it, as a tree to print: `mean(x)` stays
`mean(x)` and `x @ S @ x` keeps its order, where the built graph holds
`sum(x) / N` and `S @ x @ x`. Headers print it in Unicode and LaTeX.

Each node is the operator the text names, applied to its arguments as
written, with the shape the builders give it (found by building the node
over stand-ins of its arguments' shapes); nothing is rewritten but the
spelling of constants (`x / N` is the coefficient 1/N, `-1` a number), as
the printers write them. The tree is for printing only: it is never
differentiated or evaluated.
"""

from __future__ import annotations

from lark import v_args

from .. import ops
from ..hooks import provide
from ..ir.expr import Apply, Const, Expr, const, is_op, var
from .expressions import ExprBuilder
from .values import ARRAY_TUPLES, CONTRACTIONS, SHAPE_ARGUMENTS
from .grammar import syntax_tree

_OPERATORS = {"+": "add", "*": "mul", "/": "div", "@": "matmul", "**": "pow"}


def _negative(x: Expr) -> Expr:
    return Apply("mul", (const(-1), x), (), x.shape)


@v_args(meta=True)
class WrittenBuilder(ExprBuilder):
    """The expression builder, keeping each operator as written."""

    @staticmethod
    def _stand_in(node, k: int = 0):
        """A variable of `node`'s shape (a constant, and a condition, which
        only `where` takes, stay themselves)."""
        if isinstance(node, Expr) and not isinstance(node, Const) \
                and not is_op(ops.unnamed(node), "compare"):
            return var(f"written {k}", node.shape)
        return node

    def _stand_ins(self, children) -> list:
        return [self._stand_in(c, k) for k, c in enumerate(children)]

    def binop(self, meta, children):
        left, op, right = children
        built = super().binop(meta, self._stand_ins(children))
        if str(op) == "/" and isinstance(right, Const):  # a constant divisor is a
            if isinstance(left, Const):                   # coefficient, as printers write it
                return const(left.value / right.value)
            return Apply("mul", (const(1 / right.value), left), (), built.shape)
        return Apply(_OPERATORS[str(op)], (left, right), (), built.shape)

    def terms(self, meta, children):
        built = super().terms(meta, [self._stand_in(c, k) if k == 0 else c if k % 2 else
                                     (self._stand_in(c[0], k), c[1])
                                     for k, c in enumerate(children)])
        args = [children[0]] + [node if str(op) == "+" else _negative(node)
                                for op, (node, _) in zip(children[1::2], children[2::2])]
        return Apply("add", tuple(args), (), built.shape)

    def neg(self, meta, children):
        x = self._operand(children[1], meta)
        return super().neg(meta, children) if isinstance(x, Const) else _negative(x)

    def keyword(self, meta, children):
        """A keyword's value (axis=-1) as the builders read it: a number."""
        key, value = children
        if isinstance(value, Expr) and not isinstance(value, Const):
            text = self.text[key.end_pos:meta.end_pos].lstrip().removeprefix("=")
            value = ExprBuilder(self.scope, text).transform(syntax_tree(text).children[0]
                                                            .children[0])
        return key, value

    def transpose(self, meta, children):
        built = super().transpose(meta, self._stand_ins(children))
        return Apply("transpose", (children[0],), (), built.shape)

    def attribute(self, meta, children):
        built = super().attribute(meta, self._stand_ins(children))
        return Apply("transpose", (children[0],), (), built.shape)

    def indexing(self, meta, children):
        node, subscripts = children
        stand_in = self._stand_in(node, 0)
        built = super().indexing(meta, [stand_in, subscripts])
        if built is stand_in:  # X[...] is X
            return node
        if is_op(built, "gather"):
            return Apply("gather", (node, built.args[1]), (), built.shape)
        return Apply(built.op, (node,), built.params, built.shape)

    def call(self, meta, children):
        token, arguments = children
        built = super().call(meta, [token, [(item[0], item[1]) if isinstance(item, tuple)
                                            else self._stand_in(item, k)
                                            for k, item in enumerate(arguments or [])]])
        name = ops.ALIASES.get(str(token), str(token))
        if name in ops.OPS and ops.OPS[name].dims:  # zeros(N, D), eye(N): dimensions only
            return built
        if name in CONTRACTIONS:  # the built node over the arguments as written
            return _substituted(built, {self._stand_in(a, k): a
                                        for k, a in enumerate(arguments) if isinstance(a, Expr)})
        args = [a for a in arguments or [] if not isinstance(a, tuple)]
        if name in ARRAY_TUPLES:  # concatenate((A, B), axis=1): as built
            return built
        if name in SHAPE_ARGUMENTS:  # reshape(X, (B, -1)): its sizes as the builder reads them
            return Apply(name, (args[0],), (("shape", built.shape),), built.shape)
        params = tuple((str(k), self._keyword(str(token), str(k), v)) for k, v in
                       (a for a in arguments if isinstance(a, tuple)))
        return Apply(name, tuple(args), params, built.shape)


def _substituted(node: Expr, values: dict) -> Expr:
    """`node` with the stand-ins in `values` replaced, nothing rebuilt."""
    if node in values:
        return values[node]
    if not isinstance(node, Apply):
        return node
    return Apply(node.op, tuple(_substituted(a, values) for a in node.args), node.params,
                 node.shape)


def written_expr(problem, name: str) -> Expr | None:
    """The definition of `name` (an intermediate, or the function) as
    written, or None where the problem has no text for it."""
    text = problem.written.get(name)
    if text is None:
        return None
    statement = syntax_tree(text).children[0]
    builder = WrittenBuilder(problem.scope(), text)
    return builder.transform(statement.children[0])


provide(written_expr)
