"""The operator table's entry type and registry.

An `Op` is one operator's mathematics: its shape rule, its reverse-mode
derivative rule (a vector-Jacobian product) and its forward differential,
parameters and domain. `OPS` maps each name to its entry; the entries are
registered by `matcalc.ops.table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import precedence as P
from ..ir.expr import Apply, Expr
from ..ir.shapes import Shape

@dataclass(frozen=True)
class Form:
    """How one output language writes an operator.

    `template` is a format string over the printed arguments (`{0}`, `{1}`)
    or a function `(args, params) -> str`; `prec` is the precedence of the
    result and `arg_prec` the least precedence an argument may have before it
    needs parentheses (one number, or one per argument).
    """

    template: str | Callable
    prec: int = P.ATOM
    arg_prec: int | tuple = P.LOWEST

    def arg_precedence(self, i: int) -> int:
        if isinstance(self.arg_prec, tuple):
            return self.arg_prec[min(i, len(self.arg_prec) - 1)]
        return self.arg_prec

    def render(self, args: list[str], params: dict) -> str:
        if callable(self.template):
            return self.template(args, params)
        return self.template.format(*args, **params)


@dataclass(frozen=True)
class Op:
    """One operator: shape rule, derivative rule and its three written forms.

    `vjp(g, node, i)` returns the adjoint contribution to argument `i` of
    `node` given the adjoint `g` of `node`, or None where there is none.
    `params` lists keyword parameters with their defaults; `dims`, for an
    operator whose positional arguments are dimensions (`ones(N, D)`), maps
    them to its `shape` parameter (its signature says how many); `domain` tells the
    numerical check which inputs the function needs ('positive', 'unit' for
    |x| < 1, 'spd'); `helper` is the source of a NumPy function the generated
    module defines when the operator's NumPy form calls it. For the
    derivation shown step by step, `jvp(node, ds)` is the differential of
    `node` given the differentials `ds` of its arguments (None where an
    argument is constant), `rule` names it (product rule, d tr, ...) and
    `identity` names the inner-product identity its reverse rule uses.
    """

    name: str
    shape: Callable[[list, dict], Shape]
    vjp: Callable | None
    text: Form
    latex: Form
    numpy: Form
    nargs: int | None = 1
    params: tuple = ()
    dims: Callable | None = None
    domain: str = ""
    elementwise: bool = False
    helper: str = ""
    jvp: Callable | None = None
    rule: str = ""
    identity: str = ""


OPS: dict[str, Op] = {}
ALIASES = {"tr": "trace"}


def _register(op: Op) -> Op:
    OPS[op.name] = op
    return op


def _is(node: Expr, *names: str) -> bool:
    return isinstance(node, Apply) and node.op in names


def unnamed(node: Expr) -> Expr:
    """The value a named intermediate stands for (the node itself if unnamed)."""
    while _is(node, "name"):
        node = node.args[0]
    return node


def _view(node: Expr, *names: str) -> Apply | None:
    """`node`, or the value a named intermediate stands for, when it applies
    one of the operators `names`; else None. Every stable form matches its
    pattern through `_view`, so naming a value never hides the form."""
    node = unnamed(node)
    return node if _is(node, *names) else None


def _kwargs(params: dict) -> str:
    return "".join(f", {k}={v}" for k, v in params.items() if v is not None)


def call(name: str) -> Form:
    """The form `name(arg, ..., key=value)`."""
    return Form(lambda a, p: f"{name}({', '.join(a)}{_kwargs(p)})")


def latex_call(command: str) -> Form:
    """The LaTeX form `\\command\\left(arg\\right)`."""
    return Form(lambda a, p: f"{command}\\left({', '.join(a)}\\right)")


# ---------------------------------------------------------------- builders ---