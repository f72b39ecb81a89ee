"""The operator table's entry type and registry.

An `Op` is one operator's mathematics: its shape rule, its reverse-mode
derivative rule (a vector-Jacobian product) and its forward differential,
parameters and domain. `OPS` maps each name to its entry; the entries are
registered by `matcalc.ops.table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..ir.expr import Apply, Expr, is_op
from ..ir.shapes import Shape


@dataclass(frozen=True)
class Op:
    """One operator's mathematics: shape rule, derivative rules, parameters.

    `vjp(g, node, i)` returns the adjoint contribution to argument `i` of
    `node` given the adjoint `g` of `node`, or None where there is none.
    `params` lists keyword parameters with their defaults; `dims`, for an
    operator whose positional arguments are dimensions (`ones(N, D)`), maps
    them to its `shape` parameter (its signature says how many); `domain` tells the
    numerical check which inputs the function needs ('positive', 'unit' for
    |x| < 1, 'spd'). For the derivation shown step by step, `jvp(node, ds)`
    is the differential of `node` given the differentials `ds` of its
    arguments (None where an argument is constant), `rule` names it (product
    rule, d tr, ...) and `identity` names the inner-product identity its
    reverse rule uses. `symmetry` says when a square result is symmetric:
    'always' (eye), 'args' (when every argument is: inv, A + B, exp(A)),
    'same_args' (x xᵀ) or 'chain' (read as a product of factors); '' never
    known. A `cheap` operator is a view or a constant array: the code writes
    it where it is used instead of naming it.
    How each output writes an operator is the output's own (`targets/`).
    """

    name: str
    shape: Callable[[list, dict], Shape]
    vjp: Callable | None
    nargs: int | None = 1
    params: tuple = ()
    dims: Callable | None = None
    domain: str = ""
    elementwise: bool = False
    jvp: Callable | None = None
    rule: str = ""
    identity: str = ""
    symmetry: str = ""
    cheap: bool = False


OPS: dict[str, Op] = {}
ALIASES = {"tr": "trace", "logsigmoid": "log_sigmoid"}


def _register(op: Op) -> Op:
    OPS[op.name] = op
    return op


def param(node: Apply, key: str):
    """The parameter `key` of `node`, its operator's default where unset."""
    return node.param(key, dict(OPS[node.op].params)[key])


def unnamed(node: Expr) -> Expr:
    """The value a named intermediate stands for (the node itself if unnamed)."""
    while is_op(node, "name"):
        node = node.args[0]
    return node


def _view(node: Expr, *names: str) -> Apply | None:
    """`node`, or the value a named intermediate stands for, when it applies
    one of the operators `names`; else None. Every stable form matches its
    pattern through `_view`, so naming a value never hides the form."""
    node = unnamed(node)
    return node if is_op(node, *names) else None


def _broadcast_vector(x: Expr) -> tuple:
    """("col", v) for v[:, None], ("row", v) for v[None, :] or a vector v
    (which broadcasts as a row), else (None, None)."""
    if is_op(x, "col", "row"):
        return x.op, x.args[0]
    return ("row", x) if x.ndim == 1 else (None, None)
