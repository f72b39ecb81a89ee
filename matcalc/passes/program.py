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
from collections import Counter
from dataclasses import dataclass

from ..ir.expr import Apply, Const, Expr, Var, apply, is_const, is_op, postorder, rewrite, var
from ..ops import OPS, matmul, rebuild, transpose, unnamed
from ..ops.builders import term_key
from .lowering import inverse_times, plan, scaled
from .shared import CHEAP as _CHEAP, SubSums, twins_of, uses_of

# Deepest expression one binding may hold: deeper ones are split into named
# parts, so generated code never nests past what Python compiles.
MAX_DEPTH = 40

# Most nodes of a sum rebuilt from its unmarked terms (`_Naming._small`).
SMALL = 64

# Operators rebuilt through their builders where names replace their
# arguments (`_Naming._named`), so the builders' algebra applies to names.
REBUILT = ("add", "mul", "div", "outer")


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


def _is_bound(node: Expr, uses: dict) -> bool:
    """Whether a node is worth a name of its own: computed, used twice, and
    more than a negated variable (−y reads as itself)."""
    return isinstance(node, Apply) and node.op not in _CHEAP and node.op != "name" \
        and uses.get(node, 0) > 1 and not _leaf_view(node)


def _negated_leaf(node: Apply) -> bool:
    return node.op == "mul" and len(node.args) == 2 and is_const(node.args[0], -1) \
        and isinstance(node.args[1], Var)


def _leaf_view(node: Expr) -> bool:
    """−y or Xᵀ, or an adjoint that is one of them: each reads as itself
    (δt0 = X.T, then δt0.T, was X.T twice over)."""
    while is_op(node, "adjoint"):
        node = node.args[0]
    return isinstance(node, Apply) and (_negated_leaf(node) or (
        node.op == "transpose" and isinstance(node.args[0], Var)))


def _size(node: Expr) -> int:
    """The operations a printed expression holds, each written-out
    repetition counted (names and views cost nothing)."""
    count, stack = 0, [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Apply):
            count += n.op not in _CHEAP
            stack.extend(n.args)
    return count


def _scaled_name(node: Expr) -> bool:
    """c x for a constant c and a name x."""
    return is_op(node, "mul") and len(node.args) == 2 and isinstance(node.args[0], Const) \
        and isinstance(node.args[1], Var)


def _scalar_quotient(node: Expr) -> bool:
    """c / x for a constant c and a scalar name x."""
    return is_op(node, "div") and isinstance(node.args[0], Const) \
        and isinstance(node.args[1], Var) and node.ndim == 0


def _marked(node: Expr) -> list[Expr]:
    """An adjoint and the value under its marks (the value is bound)."""
    nodes = [node]
    while is_op(nodes[-1], "adjoint"):
        nodes.append(nodes[-1].args[0])
    return nodes


def _transposes(node: Expr) -> int:
    """How many transposes a printed expression holds."""
    return sum(is_op(n, "transpose") for n in postorder([node]))


def _is_name(node: Expr | None) -> bool:
    """A bound name, or its transpose."""
    return isinstance(node, Var) or is_op(node, "transpose") and isinstance(node.args[0], Var)


def _user_names(problem, planned: dict) -> dict[Expr, str]:
    """The user's name of each node that computes a named value."""
    user: dict[Expr, str] = {}
    for name, node in problem.intermediates.items():
        if isinstance(unnamed(node), Apply):
            user.setdefault(planned.get(unnamed(node), unnamed(node)), name)
    return user


class _Naming:
    """One build: which nodes get a name, and the bindings made in order
    (`t0, t1, ...` forward, `g0, g1, ...` backward)."""

    def __init__(self, names: Names, order: list, forward: set, uses: dict, twins: dict,
                 sums: SubSums):
        self.names, self.order, self.forward, self.uses = names, order, forward, uses
        self.twins = twins  # a node, the earlier one that computes it and whether transposed
        self.transposed = {twin for twin, flip in twins.values() if flip}
        self.sub_sums = sums  # the arguments each sum uses (`shared.SubSums`)
        self.counters = {"forward": ("t", itertools.count()),
                         "backward": ("g", itertools.count())}
        self.chosen: dict[Expr, str] = {}
        self.role: dict[Expr, tuple[str, str | None]] = {}
        self.bindings: list[Binding] = []
        self.plain: dict[Expr, Expr] = {}  # nodes with their marks dissolved (`_plain`)
        self.sums: list[tuple] = []        # the terms of each bound sum, and its name
        self.named: dict = {}  # each bound node and its body (and its transpose): its name
        self.issued: set[str] = set()  # the numbered names given

    def numbered(self, kind: str) -> str:
        name = self.names.numbered(*self.counters[kind])
        self.issued.add(name)
        return name

    def name_forward(self, value: Expr, value_name: str, user: dict) -> None:
        """The value, the shared forward nodes and the user's named ones."""
        self.chosen[value], self.role[value] = value_name, ("value", None)
        for node in self.order:
            if node in self.chosen:
                continue
            if node in self.forward and _is_bound(node, self.uses):
                self.chosen[node] = user.get(node) or self.numbered("forward")
                self.role[node] = ("forward", None)
            elif node in user and (node in self.forward or node.op not in _CHEAP):
                # a named value keeps its name, also where only the gradients use it
                self.chosen[node], self.role[node] = user[node], ("forward", None)

    def name_backward(self, adjoint: dict) -> None:
        """The shared backward nodes: `d` + name for the adjoint of a named
        forward node, else `g0, g1, ...`."""
        owner: dict[Expr, str] = {}
        for node in reversed(self.order):
            name = self.chosen.get(unnamed(node))
            if node in self.forward and name is not None:
                for n in (*self._sole_terms(node), node):
                    if n in adjoint:
                        for a in _marked(adjoint[n]):
                            owner.setdefault(a, name)
                        break
        for node in self.order:
            if node in self.forward or node in self.chosen or not _is_bound(node, self.uses):
                continue
            if node in owner:
                self.chosen[node] = self.names.fresh("d" + owner[node])
                self.role[node] = ("adjoint", owner[node])
            else:
                self.chosen[node], self.role[node] = self.numbered("backward"), ("backward", None)

    def _sole_terms(self, node: Expr) -> list[Expr]:
        """The terms of a sum that only the sum uses, of its shape: each has
        the sum's whole adjoint (X W in X W + b), where the sum's own may be
        a part (X W + b − lse(X W + b) uses the sum's terms, not the sum)."""
        return [t for t in self.sub_sums.used.get(node, ())
                if t.shape == node.shape and self.uses.get(t) == 1]

    def _temporary(self, body: Expr, kind: str) -> Var:
        name = self.numbered(kind)
        self.bindings.append(Binding(name, body, kind))
        return var(name, body.shape)

    def _split(self, op: str, args: tuple, kind: str) -> tuple:
        """A long sum or product, in named parts of at most MAX_DEPTH terms."""
        while len(args) > MAX_DEPTH:
            args = tuple(self._temporary(apply(OPS[op], args[k:k + MAX_DEPTH]), kind)
                         for k in range(0, len(args), MAX_DEPTH))
        return args

    def _body(self, node: Expr, args: tuple, replaced: dict, opened: bool) -> Expr:
        """The node over its arguments as bound; where an argument is an
        adjoint whose mark was dissolved (unnamed), the node is built from
        its unmarked arguments, so the builders' algebra applies once more
        (X @ −(A B) is −(X @ A B), (Xᵀ)ᵀ is X, like terms collect), and then
        each part of it that is bound is its name."""
        if is_op(node, "adjoint"):
            return args[0]
        if inverse_times(node, self.chosen):  # A⁻¹ B, computed once: a solve, not an inverse
            return apply(OPS["solve"], (replaced[node.args[0].args[0]], args[1]))
        if opened and len(args) <= MAX_DEPTH:
            over_names = self._with_bound_sums(self._named(rebuild(node, args)))
            if node.op != "add" or not self._small(plain := self._plain(node)):
                return over_names
            unmarked = self._with_bound_sums(self._named(plain))
            return unmarked if _size(unmarked) <= _size(over_names) else over_names
        if isinstance(node, Apply):
            return self._with_bound_sums(apply(OPS[node.op], args, node.params))
        return node

    def _with_bound_sums(self, body: Expr) -> Expr:
        """A sum whose terms include every term of a bound sum, with that
        sum's name for them (t0 + b − c is t1 − c where t1 = t0 + b)."""
        if not is_op(body, "add"):
            return body
        for terms, name in self.sums:  # the terms of a bound sum are distinct (`_bind`)
            if len(terms) < len(body.args) and all(t in body.args for t in terms):
                rest = list(body.args)
                for t in terms:
                    rest.remove(t)
                return apply(OPS["add"], (name, *rest))
        return body

    def _oriented(self, node: Expr, body: Expr) -> Expr:
        """The body to bind: a product whose transpose is also used, in the
        orientation with fewer transposes (X @ v, not vᵀ @ Xᵀ)."""
        if node not in self.transposed or not is_op(body, "matmul"):
            return body
        a, b = body.args
        flipped = matmul(transpose(b), transpose(a))  # (A B)ᵀ = Bᵀ Aᵀ
        return flipped if _transposes(flipped) < _transposes(body) else body

    def _named(self, body: Expr) -> Expr:
        """`body` with each part of it that is bound replaced by its name
        (and a sum, product, quotient or outer product over names rebuilt:
        g3 + g3 is 2 g3, outer(t1, 2 t1) is 2 outer(t1, t1))."""
        return rewrite([body], lambda n, a: self._name_of(n) or (
            (rebuild(n, a) if is_op(n, *REBUILT) else apply(OPS[n.op], a, n.params))
            if a != n.args else n), self.named)[0]

    def _small(self, plain: Expr) -> bool:
        """Whether `plain` holds at most SMALL nodes besides bound ones (a
        sum rebuilt from its unmarked terms; a deep chain is not)."""
        return next(itertools.islice(postorder([plain], self.named), SMALL, None), None) is None

    def _name_of(self, node: Expr) -> Expr | None:
        """The name bound to `node`, or the transposed name of a bound
        product chain that `node` is the transpose of (Bᵀ Aᵀ is t0ᵀ for
        t0 = A B)."""
        if node in self.named:
            return self.named[node]
        if is_op(node, "matmul"):
            return self.named.get(("ᵀ", term_key(node)))
        return None

    def _bind(self, node: Expr, name: Var, body: Expr) -> None:
        """Record `name` as bound to `node` (its own plain form) and to
        `body`, and its transpose to the transposed chain of a product."""
        self.plain.setdefault(node, node)
        self.named.setdefault(body, name)
        self.named.setdefault(node, name)
        if is_op(body, "add") and len(set(body.args)) == len(body.args):
            self.sums.append((body.args, name))
        if is_op(node, "matmul") and node.ndim == 2:
            self.named.setdefault(("ᵀ", term_key(transpose(node))), transpose(name))

    def _plain(self, node: Expr) -> Expr:
        """The node with the adjoint and name marks below it dissolved,
        rebuilt through the builders, down to the bound nodes (memoised in
        `plain`, where a bound node is itself)."""
        for n in postorder([node], self.plain):
            if is_op(n, "name", "adjoint"):
                self.plain[n] = self.plain[n.args[0]]
            else:
                args = tuple(self.plain[a] for a in n.args)
                self.plain[n] = rebuild(n, args) if args != n.args else n
        return self.plain[node]

    def emit(self) -> dict[Expr, Expr]:
        """Bind the chosen nodes in order, and split what nests deeper than
        MAX_DEPTH; returns each node as the bindings refer to it."""
        replaced: dict[Expr, Expr] = {}
        depth: dict[Expr, int] = {}
        opened: set[Expr] = set()  # dissolved adjoint marks, and the nodes built on them
        for node in self.order:
            if is_op(node, "name", "adjoint") \
                    and node not in self.chosen:
                replaced[node], depth[node] = replaced[node.args[0]], depth[node.args[0]]
                if node.op == "adjoint" or node.args[0] in opened:
                    opened.add(node)
                continue
            twin, flip = self.twins.get(node, (None, False))
            if _is_name(name := replaced.get(twin)):
                replaced[node], depth[node] = (transpose(name) if flip else name), 0
                opened.add(node)  # what it feeds is rebuilt: (t0ᵀ)ᵀ is t0, t1 + t1 is 2 t1
                self.plain.setdefault(node, node)  # and a sum rebuilt unmarked names it
                self.named.setdefault(node, replaced[node])
                continue
            kind = "forward" if node in self.forward else "backward"
            args = tuple(replaced[a] for a in node.args)
            below = max((depth[a] for a in node.args), default=-1)
            if is_op(node, "add", "mul") and len(args) > MAX_DEPTH:
                args, below = self._split(node.op, args, kind), 0
            depth[node] = below + max(len(args), 1)
            if depth[node] > MAX_DEPTH and node not in self.chosen:
                self.chosen[node], self.role[node] = self.numbered(kind), (kind, None)
            rebuilt = any(a in opened for a in node.args)
            if rebuilt and node not in self.chosen:
                opened.add(node)
            body = self._body(node, args, replaced, rebuilt)
            if isinstance(body, Var) and self.role.get(node, ("",))[0] != "value":
                replaced[node], depth[node] = body, 0      # no alias line: g0 = t0
                if body is not node:                       # what it feeds is rebuilt:
                    opened.add(node)                       # t0 + t0 is 2 t0
                continue
            if (rebuilt and _scaled_name(body)) or (       # no line g0 = 0.5 * t1: the
                    self.role.get(node, ("",))[0] == "backward" and _scalar_quotient(body)):
                replaced[node], depth[node] = body, 1      # products it feeds take the scale
                opened.add(node)
                continue
            if node in self.chosen:
                written = self._oriented(node, body)
                self.bindings.append(Binding(self.chosen[node], written, *self.role[node]))
                name = var(self.chosen[node], written.shape)
                replaced[node], depth[node] = (name if written is body else transpose(name)), 0
                self._bind(node, replaced[node], body)
                if written is not body:
                    opened.add(node)
            else:
                replaced[node] = body
        return replaced


def build(problem, seed: Var | None, results: list[tuple[str, str, Expr]],
          adjoint: dict[Expr, Expr], names: Names, role_of_results: str = "gradient",
          numeric: bool = False, textbook: bool = False) -> Program:
    """Name the shared subexpressions of the value of `problem` and of the
    results, given as (name, what it is of, expression): the gradients
    ("dW", "W", ∂L/∂W), or second-order results. A `numeric` program is the
    one generated code runs, where a form may give way to one that is cheaper
    or more accurate in floating point (`lowering.plan`); a `textbook`
    program keeps every scale on the adjoint it belongs to (dY = 2/N (Y − T),
    named once, where code scales the products it feeds)."""
    planned = plan([problem.output] + [expr for _, _, expr in results], numeric,
                   moved_scales=not textbook)
    output = planned[problem.output]
    grads = [planned[expr] for _, _, expr in results]
    adjoint = {planned.get(k, k): planned[g] for k, g in adjoint.items()  # an adjoint whose
               if g in planned and (planned[g] is g or scaled(g) is None)}  # scale moved: no name
    order = list(postorder([output] + grads[::-1]))
    sums = SubSums()
    uses = uses_of(order, [output] + grads, sums)
    forward = set(postorder([output]))
    twins = {later: (twin, flip) for later, (twin, flip) in twins_of(order).items()
             if later not in forward or twin in forward}  # the forward pass runs first
    _without_replaced(order, [output] + grads, uses, sums, twins)
    once = {twin for twin, _ in twins.values() if uses[twin] == 1}  # bound for a twin only
    for later, (twin, _) in twins.items():
        uses[twin] += uses[later]
    naming = _Naming(names, order, forward, uses, twins, sums)
    gradient_names = [(of, names.fresh(name)) for name, of, _ in results]
    naming.name_forward(unnamed(output), problem.output_name, _user_names(problem, planned))
    naming.name_backward(adjoint)
    replaced = naming.emit()
    results_bound = [Binding(name, replaced[g], role_of_results, w)
                     for (w, name), g in zip(gradient_names, grads)]
    bindings = _inlined(naming.bindings + results_bound,
                        {naming.chosen[n] for n in once if n in naming.chosen})
    return Program(seed, _renumbered(bindings, names.taken - naming.issued),
                   problem.output_name, tuple(gradient_names))


def _without_replaced(order: list, roots: list, uses: dict, sums: SubSums,
                      twins: dict) -> None:
    """Take from `uses` the uses by nodes never computed: a twin, written
    as its earlier one's name, and a node only they used (X + (−U Vᵀ)ᵀ
    after X + (−U Vᵀ) does not use −U Vᵀ's twin)."""
    keep = set(roots)
    for node in reversed(order):
        if node in twins or (uses.get(node, 0) <= 0 and node not in keep):
            for a in sums.used.get(node, node.args):
                uses[a] -= 1


def _inlined(bindings: list, names: set) -> list:
    """The bindings with each backward one of `names` (bound because its
    twin used it too) written where it is used, where that is once: the
    twin's uses collected into it (2 * g0 for g0 + g0)."""
    count = Counter(a.name for b in bindings for n in postorder([b.expr])
                    for a in (n.args if isinstance(n, Apply) else ()) if isinstance(a, Var))
    count.update(b.expr.name for b in bindings if isinstance(b.expr, Var))
    single = {b.name: b.expr for b in bindings
              if b.name in names and b.role == "backward" and count[b.name] == 1}
    if not single:
        return bindings

    out = []
    for b in bindings:  # in order: what a binding inlines is itself inlined already
        expr = _substituted([b.expr], lambda v: single.get(v.name))[0]
        if b.name in single:
            single[b.name] = expr
        else:
            out.append(Binding(b.name, expr, b.role, b.of))
    return out


def _renumbered(bindings: list, taken: set) -> tuple:
    """The backward bindings numbered g0, g1, ... in order, without the gaps
    that numbers given and then not bound (an alias) leave; `taken`: the
    names no numbered binding may take."""
    numbered = [b.name for b in bindings if b.role == "backward" and b.name[:1] == "g"
                and b.name[1:].isdigit() and b.name not in taken]
    free = (f"g{k}" for k in itertools.count() if f"g{k}" not in taken)
    by_name = {old: new for old, new in zip(numbered, free) if old != new}
    if not by_name:
        return tuple(bindings)

    def renamed(v: Var) -> Var | None:
        return var(by_name[v.name], v.shape, v.structure, v.domain) if v.name in by_name else None

    exprs = _substituted([b.expr for b in bindings], renamed)
    return tuple(Binding(by_name.get(b.name, b.name), e, b.role, b.of)
                 for b, e in zip(bindings, exprs))


def _substituted(exprs: list, replacement) -> list:
    """`exprs` with each name that `replacement` (a Var to an expression, or
    None) maps written as its expression."""
    def visit(node, args):
        if isinstance(node, Var):
            found = replacement(node)
            return node if found is None else found
        return apply(OPS[node.op], args, node.params) if isinstance(node, Apply) else node

    return rewrite(exprs, visit)
