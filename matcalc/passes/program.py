"""Common subexpressions, named: the function and its gradients as a program.

Every node that is used more than once (and costs more than a view), every
intermediate the user named, the function value and each gradient become a
`Binding`; later bindings refer to earlier ones by name. Names follow the
seeds: the user's names for forward intermediates (Z1), `t0, t1, ...` for
other shared forward values, `d` + name for the adjoint of a named node
(dZ1 = ∂L/∂Z1), and `d` + variable for each gradient (dW1).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy

from ..ir.expr import Apply, Const, Expr, Var, apply, const, postorder, var
from ..ops import OPS, add, unnamed

# Deepest expression one binding may hold: deeper ones are split into named
# parts, so generated code never nests past what Python compiles.
MAX_DEPTH = 40

# Operators that are views or free to recompute: never worth a name.
_CHEAP = frozenset(name for name, op in OPS.items() if op.cheap)


@dataclass(frozen=True)
class Binding:
    """`name = expr`; `role` is 'forward', 'value', 'backward', 'adjoint' or
    'gradient'; `of` names the node an adjoint or gradient belongs to."""

    name: str
    expr: Expr
    role: str
    of: str | None = None


@dataclass(frozen=True)
class Program:
    """Bindings in evaluation order, the value's name and each gradient's."""

    seed: Var | None
    bindings: tuple
    value: str
    gradients: tuple  # ((variable, binding name), ...) in wrt order

    def needed(self, names) -> list[Binding]:
        """The bindings `names` depend on, themselves included, in order."""
        by_name = {b.name: b for b in self.bindings}
        wanted = set(names)
        for b in reversed(self.bindings):
            if b.name in wanted:
                wanted.update(n.name for n in postorder([b.expr])
                              if isinstance(n, Var) and n.name in by_name)
        return [b for b in self.bindings if b.name in wanted]

    def forward(self) -> list[Binding]:
        """The bindings needed for the value."""
        return self.needed([self.value])

    def backward(self) -> list[Binding]:
        """The bindings after the value that the gradients need."""
        done = {b.name for b in self.forward()}
        return [b for b in self.needed(g for _, g in self.gradients) if b.name not in done]


class Names:
    """Fresh identifiers that avoid every name already taken."""

    def __init__(self, taken):
        self.taken = set(taken)

    def fresh(self, base: str) -> str:
        name = base
        for k in itertools.count(2):
            if name not in self.taken:
                break
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def numbered(self, prefix: str, counter) -> str:
        while True:
            name = f"{prefix}{next(counter)}"
            if name not in self.taken:
                self.taken.add(name)
                return name


def _inverse_times(node: Expr, chosen: dict) -> bool:
    """`inv(A) @ B` where the inverse is needed nowhere else."""
    if not (isinstance(node, Apply) and node.op == "matmul"):
        return False
    a = node.args[0]
    return isinstance(a, Apply) and a.op == "inv" and a not in chosen


def _scaled(node: Expr) -> tuple[Const, Expr] | None:
    """(c, x) for c * x, also behind an `adjoint` barrier; else None."""
    if isinstance(node, Apply) and node.op == "adjoint":
        node = node.args[0]
    if isinstance(node, Apply) and node.op == "mul" and len(node.args) == 2 \
            and isinstance(node.args[0], Const) and node.args[1].ndim == 2:
        return node.args[0], node.args[1]
    return None


def _product_operands(nodes: list, roots: list, parents: dict) -> set[Expr]:
    """The scaled copies c X of forward values X that are used only as
    matrix-product operands, directly or transposed, and are no result
    themselves: the scale can go on the products, and no copy is made."""
    forward = set(postorder(roots[:1]))
    results = set(roots)

    def only_in_products(x: Expr) -> bool:
        users = parents.get(x, [])
        return x not in results and bool(users) and all(
            u.op == "matmul" or (u.op == "transpose" and only_in_products(u)) for u in users)
    return {n for n in nodes
            if (cx := _scaled(n)) is not None and cx[1] in forward and only_in_products(n)}


def _scaled_operand(x: Expr, scaled: set) -> Expr | None:
    """The scaled array behind a matrix-product operand, if any."""
    if x in scaled:
        return x
    if isinstance(x, Apply) and x.op == "transpose" and x.args[0] in scaled:
        return x.args[0]
    return None


def _parents(nodes: list, roots: list) -> dict[Expr, list]:
    """Each node's users; a root counts as a user of itself."""
    parents: dict[Expr, list] = {r: [r] for r in roots}
    for node in nodes:
        for a in node.args:
            parents.setdefault(a, []).append(node)
    return parents


def _sigmoid_slope(node: Expr, parents: dict) -> tuple[Expr, Expr, Expr] | None:
    """(σ(t), 1 − σ(t), t) for a product with both factors, where σ(t) is
    needed nowhere else."""
    if not (isinstance(node, Apply) and node.op == "mul"):
        return None
    for s in node.args:
        if not (isinstance(s, Apply) and s.op == "sigmoid"):
            continue
        rest = apply(OPS["mul"], (const(-1), s))
        c = apply(OPS["add"], (const(1), rest))
        if node.args.count(s) == node.args.count(c) == 1 \
                and set(parents[s]) <= {node, rest} \
                and set(parents[rest]) == {c} and set(parents[c]) == {node}:
            return s, c, s.args[0]
    return None


def _slope(t: Expr) -> Expr:
    """σ'(t) = σ(t) (1 − σ(t)) = e / (1 + e)² with e = exp(−|t|): one exp,
    never an overflow, and full precision in the tails, where 1 − σ(t)
    rounds to 0. σ' is even, so a factor −1 of t is dropped, and so is a
    factor y declared `sign` (|y t| = |t| for y = ±1)."""
    if isinstance(t, Apply) and t.op == "mul":
        kept = tuple(a for a in t.args if a != const(-1)
                     and not (isinstance(a, Var) and a.domain == "sign"))
        if kept:
            t = kept[0] if len(kept) == 1 else apply(OPS["mul"], kept)
    e = apply(OPS["exp"], (apply(OPS["mul"], (const(-1), apply(OPS["abs"], (t,)))),))
    return apply(OPS["div"], (e, apply(OPS["pow"], (apply(OPS["add"], (const(1), e)),
                                                      const(2)))))


def _plan(roots: list, numeric: bool) -> dict[Expr, Expr]:
    """How the code computes each node of `roots`: the node itself, except
    - solve(A, B) is A⁻¹ @ B, and solve(Aᵀ, B) is A⁻ᵀ @ B, wherever inv(A) is
      computed anyway, so A is factorised once;
    - (c X) @ Y is c (X @ Y) where X is a forward value and c X only feeds
      matrix products, so no scaled copy of X is made;
    - with `numeric`, a factor σ(t) (1 − σ(t)), where σ(t) is needed nowhere
      else, is computed from one exp (`_slope`)."""
    nodes = list(postorder(roots))
    inverted = {n.args[0] for n in nodes if isinstance(n, Apply) and n.op == "inv"}
    parents = _parents(nodes, roots)
    scaled = _product_operands(nodes, roots, parents)
    plan: dict[Expr, Expr] = {}
    for node in nodes:
        args = tuple(plan[a] for a in node.args)
        a = node.args[0] if isinstance(node, Apply) and node.op == "solve" else None
        if numeric and (slope := _sigmoid_slope(node, parents)) is not None:
            s, c, t = slope
            kept = tuple(plan[x] for x in node.args if x is not c and x is not s)
            plan[node] = _slope(plan[t]) if not kept \
                else apply(OPS["mul"], kept + (_slope(plan[t]),))
        elif a in inverted:
            plan[node] = apply(OPS["matmul"], (apply(OPS["inv"], args[:1]), args[1]))
        elif isinstance(a, Apply) and a.op == "transpose" and a.args[0] in inverted:
            inverse = apply(OPS["inv"], (plan[a.args[0]],))
            plan[node] = apply(OPS["matmul"], (apply(OPS["transpose"], (inverse,)), args[1]))
        elif node in scaled:
            plan[node] = plan[_scaled(node)[1]]  # its products take the scale
        elif isinstance(node, Apply) and node.op == "matmul" and any(
                _scaled_operand(x, scaled) for x in node.args):
            scale = sympy.Integer(1)
            for x in filter(None, (_scaled_operand(x, scaled) for x in node.args)):
                scale *= _scaled(x)[0].value
            product = apply(OPS["matmul"], args)
            plan[node] = product if scale == 1 else apply(OPS["mul"], (const(scale), product))
        elif args != node.args and node.op == "add":
            plan[node] = add(*args)  # terms whose scale moved may now be alike
        elif args != node.args:
            plan[node] = apply(OPS[node.op], args, node.params)
        else:
            plan[node] = node
    return plan


def _is_bound(node: Expr, uses: dict) -> bool:
    """Whether a node is worth a name of its own: computed, and used twice."""
    return isinstance(node, Apply) and node.op not in _CHEAP and node.op != "name" \
        and uses.get(node, 0) > 1


def build(problem, seed: Var | None, results: list[tuple[str, str, Expr]],
          adjoint: dict[Expr, Expr], names: Names, role_of_results: str = "gradient",
          numeric: bool = False) -> Program:
    """Name the shared subexpressions of the value of `problem` and of the
    results, given as (name, what it is of, expression): the gradients
    ("dW", "W", ∂L/∂W), or second-order results. A `numeric` program is the
    one generated code runs, where a form may give way to one that is cheaper
    or more accurate in floating point; the printed program keeps the
    textbook form."""
    plan = _plan([problem.output] + [expr for _, _, expr in results], numeric)
    output = plan[problem.output]
    grads = [plan[expr] for _, _, expr in results]
    adjoint = {plan.get(k, k): plan[g] for k, g in adjoint.items()  # an adjoint whose scale
               if g in plan and (plan[g] is g or _scaled(g) is None)}  # moved is not named
    roots = [output] + grads
    order = list(postorder([output] + grads[::-1]))
    forward = set(postorder([output]))

    uses: dict[Expr, int] = {}
    for node in order:
        for a in node.args:
            uses[a] = uses.get(a, 0) + 1
    for r in roots:
        uses[r] = uses.get(r, 0) + 1
    for node in reversed(order):  # an inlined view repeats its argument
        if isinstance(node, Apply) and node.op in _CHEAP and uses.get(node, 0) > 1:
            for a in node.args:
                uses[a] += uses[node] - 1

    gradient_names = [(of, names.fresh(name)) for name, of, _ in results]
    # The user's name goes to the node that computes the named value.
    user: dict[Expr, str] = {}
    for name, node in problem.intermediates.items():
        if isinstance(unnamed(node), Apply):
            user.setdefault(plan.get(unnamed(node), unnamed(node)), name)
    value = unnamed(output)

    chosen: dict[Expr, str] = {value: problem.output_name}
    role: dict[Expr, tuple[str, str | None]] = {value: ("value", None)}
    temps, grads_count = itertools.count(), itertools.count()
    for node in order:
        if node in forward and node not in chosen and _is_bound(node, uses):
            chosen[node] = user.get(node) or names.numbered("t", temps)
            role[node] = ("forward", None)
        elif node in user and node not in chosen and (node in forward or node.op not in _CHEAP):
            # a named value keeps its name, also where only the gradients use it
            chosen[node], role[node] = user[node], ("forward", None)

    owner: dict[Expr, str] = {}
    for node in reversed(order):
        name = chosen.get(unnamed(node))
        if node in forward and node in adjoint and name is not None:
            owner.setdefault(adjoint[node], name)
    for node in order:
        if node in forward or node in chosen or not _is_bound(node, uses):
            continue
        if node in owner:
            chosen[node], role[node] = names.fresh("d" + owner[node]), ("adjoint", owner[node])
        else:
            chosen[node], role[node] = names.numbered("g", grads_count), ("backward", None)

    replaced: dict[Expr, Expr] = {}
    depth: dict[Expr, int] = {}
    bindings: list[Binding] = []
    for node in order:
        if isinstance(node, Apply) and node.op in ("name", "adjoint") and node not in chosen:
            replaced[node] = replaced[node.args[0]]
            depth[node] = depth[node.args[0]]
            continue
        kind = "forward" if node in forward else "backward"

        def temporary(body: Expr) -> Expr:
            name = names.numbered(*(("t", temps) if kind == "forward" else ("g", grads_count)))
            bindings.append(Binding(name, body, kind))
            return var(name, body.shape)

        args = tuple(replaced[a] for a in node.args)
        below = max((depth[a] for a in node.args), default=-1)
        if isinstance(node, Apply) and node.op in ("add", "mul") and len(args) > MAX_DEPTH:
            while len(args) > MAX_DEPTH:  # a long sum or product, in named parts
                args = tuple(temporary(apply(OPS[node.op], args[k:k + MAX_DEPTH]))
                             for k in range(0, len(args), MAX_DEPTH))
            below = 0
        depth[node] = below + max(len(args), 1)
        if depth[node] > MAX_DEPTH and node not in chosen:
            chosen[node] = names.numbered(*(("t", temps) if kind == "forward"
                                            else ("g", grads_count)))
            role[node] = (kind, None)
        if isinstance(node, Apply) and node.op == "adjoint":
            body = args[0]
        elif _inverse_times(node, chosen):  # A⁻¹ B, computed once: a solve, not an inverse
            body = apply(OPS["solve"], (replaced[node.args[0].args[0]], args[1]))
        elif isinstance(node, Apply):
            body = apply(OPS[node.op], args, node.params)
        else:
            body = node
        if node in chosen:
            name = chosen[node]
            bindings.append(Binding(name, body, *role[node]))
            replaced[node] = var(name, node.shape)
            depth[node] = 0
        else:
            replaced[node] = body

    for (w, name), g in zip(gradient_names, grads):
        bindings.append(Binding(name, replaced[g], role_of_results, w))
    return Program(seed, tuple(bindings),
                   problem.output_name, tuple(gradient_names))
