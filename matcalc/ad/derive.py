"""Reverse accumulation over the expression graph, one rule per operator.

For a function f of the variables and an upstream adjoint `seed` (1 for a
scalar f, the symbol dS for an array-valued S), each node's adjoint is the sum
over its uses of the operator rule `vjp(adjoint(parent), parent, i)`; the
gradient by a variable X is its adjoint, the G with dL = <G, dX>. An adjoint
that feeds several rules is marked `adjoint(...)`, so it is computed once.
"""

from __future__ import annotations

from ..ir.expr import Apply, Expr, Var, postorder
from ..ops import LONG, OPS, add, is_zero, mul, ones, shared_adjoint, zeros


def adjoints(output: Expr, wrt: list[Var], seed: Expr) -> dict[Expr, Expr]:
    """The adjoint of every node on a path from `wrt` to `output`."""
    order = list(postorder([output]))
    targets = set(wrt)
    depends: set[Expr] = set()
    for node in order:
        if node in targets or any(a in depends for a in node.args):
            depends.add(node)
    adjoint: dict[Expr, Expr] = {}
    shares: dict[Expr, list[Expr]] = {output: [seed]} if output in depends else {}
    for node in reversed(order):   # every use of a node comes before it
        if node not in shares:
            continue
        parts = shares.pop(node)
        g = adjoint[node] = parts[0] if len(parts) == 1 else add(*parts)
        if not isinstance(node, Apply):
            continue
        rule = OPS[node.op].vjp
        targets = [i for i, arg in enumerate(node.args) if arg in depends]
        if len(targets) > 1 or len(g.args) > LONG:
            g = adjoint[node] = shared_adjoint(g)
        for i in targets:
            arg = node.args[i]
            contribution = rule(g, node, i)
            if contribution is None or is_zero(contribution):
                continue
            shares.setdefault(arg, []).append(contribution)
    return adjoint


def gradients(output: Expr, wrt: list[Var], seed: Expr) -> tuple[list[Expr], dict[Expr, Expr]]:
    """The gradient by each of `wrt` (a symbolic zero where f does not depend on it)."""
    adjoint = adjoints(output, wrt, seed)
    return [adjoint.get(w, zeros(w.shape)) for w in wrt], adjoint


def differentials(expr: Expr, ds: dict[Expr, Expr]) -> tuple[Expr | None, list[str]]:
    """Forward mode: the differential of `expr` given those of some leaves
    (None where it is constant), and the names of the rules used."""
    d: dict[Expr, Expr | None] = {}
    rules: list[str] = []
    for node in postorder([expr]):
        if node in ds:
            d[node] = ds[node]
        elif not isinstance(node, Apply) or all(d[a] is None for a in node.args):
            d[node] = None
        else:
            op = OPS[node.op]
            d[node] = op.jvp(node, tuple(d[a] for a in node.args))
            if d[node] is not None and is_zero(d[node]):
                d[node] = None
            elif d[node] is not None and d[node].shape != node.shape:
                d[node] = mul(ones(node.shape), d[node])  # broadcast, as the node is
            if d[node] is not None and len(d[node].args) > LONG:
                d[node] = shared_adjoint(d[node])   # grows by nesting, as adjoints do
            if op.rule and op.rule not in rules:
                rules.append(op.rule)
    return d[expr], rules
