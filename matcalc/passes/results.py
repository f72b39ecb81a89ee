"""What the caller receives: the bindings whose arrays a generated function
returns (`results`), and the gradients among them that are an array the
caller holds otherwise (`held`), which the lowering copies."""

from __future__ import annotations

from ..ir.expr import Expr, Var, is_op

# Operators whose NumPy value can be a view of their argument's memory.
VIEWS = frozenset({"transpose", "permute", "index", "reshape", "col", "row", "expand_dims",
                   "name"})


def viewed(expr: Expr) -> list[Expr]:
    """expr and the nodes whose memory it may share: down through views
    (a transpose, a slice, a reshape) to the first node that is none."""
    chain = [expr]
    while is_op(chain[-1], *VIEWS):
        chain.append(chain[-1].args[0])
    return chain


def results(program, written=frozenset()) -> set[str]:
    """The names of the bindings a caller receives: the value and each
    gradient (or second-order result) but those `written` into a larger
    array (a full Hessian's columns), and the bindings they only rename or
    view (`dX = t0.T`: t0's memory is dX's)."""
    by_name = {b.name: b.expr for b in program.bindings}
    out = {program.value, *(name for _, name in program.gradients)} - set(written)
    todo = list(out)
    while todo:
        base = viewed(by_name.get(todo.pop()))[-1]
        if isinstance(base, Var) and base.name in by_name and base.name not in out:
            out.add(base.name)
            todo.append(base.name)
    return out


def held(program, written=frozenset()) -> set[str]:
    """The gradients whose value is an array the caller holds otherwise, or
    a view of one: an input (`dX = Y`), a forward value (the cache), another
    gradient, or a backward value an earlier gradient already is. Each is
    copied, so that every gradient is the caller's own array."""
    by_name = {b.name: b.expr for b in program.bindings}
    gradients = [name for _, name in program.gradients if name not in written]
    taken = {b.name for b in program.forward()} | set(gradients)
    out = set()
    for name in gradients:
        base = viewed(by_name[name])[-1]
        if not (isinstance(base, Var) and base.ndim):
            continue
        if base.name not in by_name or base.name in taken:
            out.add(name)
        taken.add(base.name)
    return out
