"""The derivation shown step by step, by matrix differentials.

Three kinds of lines, each an equality that holds:

* forward: the differential of each intermediate from those of its inputs,
  dZ1 = dX W1 + X dW1 + db1, naming the rules used (product rule, d tr, ...);
* reverse: each intermediate's share of dL moved onto its inputs,
  <δZ1, dZ1> = <δZ1 W1ᵀ, dX> + <Xᵀ δZ1, dW1> + ..., naming the identity
  (trace cyclicity, transpose of a trace, ...), and each adjoint as the sum of
  its shares, δt0 = δt1 @ W2.T;
* identification: dL = Σ <G_X, dX> gives ∂L/∂X = G_X.

A line that the builders' identities shaped (log(1 + exp(z)) = softplus(z),
...) names them after its rules.

Here <A, B> = tr(AᵀB) = sum(A ⊙ B), dX is a differential and δv = ∂L/∂v.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .derive import adjoints, differentials
from ..ir.expr import Apply, Expr, Var, const, postorder, rewrite, var
from ..hooks import provided
from ..ops import OPS, add, rebuild, rulebook, zeros

if TYPE_CHECKING:  # steps explain a Gradient, which imports this module
    from .gradient import Gradient


@dataclass(frozen=True)
class Step:
    """`lhs = rhs` by `rules`; kind is 'differential', 'share', 'adjoint' or
    'gradient'. A 'share' line reads <δv, dv> = Σ <terms[i][0], terms[i][1]>."""

    kind: str
    lhs: Expr
    rhs: Expr | None
    rules: tuple[str, ...]
    terms: tuple = ()


def differential(name: str, shape) -> Var:
    """The differential dX of the variable or intermediate X."""
    return var(f"d {name}", shape)


def adjoint_symbol(name: str, shape) -> Var:
    """δv = ∂L/∂v as a symbol."""
    return var(f"δ {name}", shape)


def _named(expr: Expr, body: Expr, name: Var) -> Expr:
    """`expr` with the intermediate's own expression written as its name
    (σ(z1)(1 − σ(z1)) reads a1 (1 − a1))."""
    return rewrite([expr], lambda node, args: name if node is body else rebuild(node, args))[0]


def _identities(expr: Expr, leaves) -> list[str]:
    out: list[str] = []
    for node in postorder([expr], done=leaves):
        if isinstance(node, Apply) and OPS[node.op].identity not in out + [""]:
            out.append(OPS[node.op].identity)
    return out


def _with(rules: list[str], used: list) -> tuple[str, ...]:
    """A line's rules, then the builders' identities that shaped it."""
    return tuple(rules) + tuple(r.identity for r in used if r.identity not in rules)


@dataclass(frozen=True)
class Derivation:
    """The steps from the function to its gradients."""

    gradient: Gradient
    steps: tuple[Step, ...]

    def __str__(self) -> str:
        return provided("derivation_text")(self)

    def __repr__(self) -> str:
        return (f"<Derivation of the gradients of {self.gradient.problem.function()}: "
                f"{len(self.steps)} steps>")

    def latex(self) -> str:
        return provided("derivation_latex")(self)

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"


def derivation(gradient: Gradient) -> Derivation:
    """Differentials forward, shares of dL backward, then identification."""
    problem, program = gradient.problem, gradient.program
    wrt = [problem.variables[w] for w in problem.wrt]
    forward = program.forward()
    symbol = {b.name: var(b.name, b.expr.shape) for b in forward}
    ds: dict[Expr, Expr] = {w: differential(w.name, w.shape) for w in wrt}
    steps: list[Step] = []
    depends: list = []
    for b in forward:
        with rulebook.recording() as used:
            d, rules = differentials(b.expr, ds)
            d = None if d is None else _named(d, b.expr, symbol[b.name])
        if d is None:
            continue
        ds[symbol[b.name]] = differential(b.name, b.expr.shape)
        depends.append(b)
        steps.append(Step("differential", ds[symbol[b.name]], d, _with(rules, used)))

    value = symbol[program.value]
    share: dict[Expr, list[Expr]] = {}
    delta: dict[Expr, Expr] = {value: adjoint_symbol(program.value, value.shape)
                               if value.shape else const(1)}
    leaves_of = {b.name: set(postorder([b.expr])) for b in depends}
    for k, b in reversed(list(enumerate(depends))):
        v = symbol[b.name]
        if v not in delta:
            continue
        leaves = [leaf for leaf in postorder([b.expr]) if leaf in ds]
        with rulebook.recording() as used:
            local = {leaf: _named(g, b.expr, v)
                     for leaf, g in adjoints(b.expr, leaves, delta[v]).items()}
        terms = tuple((local[leaf], ds[leaf]) for leaf in leaves if leaf in local)
        steps.append(Step("share", delta[v], ds[v],
                          _with(_identities(b.expr, leaves), used), terms))
        for leaf in leaves:
            if leaf in local:
                share.setdefault(leaf, []).append(local[leaf])
        for leaf in leaves:
            pending = any(leaf in leaves_of[c.name] for c in depends[:k])
            if leaf.name in symbol and leaf not in delta and not pending:
                delta[leaf] = adjoint_symbol(leaf.name, leaf.shape)
                steps.append(Step("adjoint", delta[leaf], add(*share[leaf]), ("sum of shares",)))
    for w in wrt:
        total = add(*share[w]) if w in share else zeros(w.shape)
        steps.append(Step("gradient", w, total, ("identification: dL = Σ <∂L/∂X, dX>",)))
    return Derivation(gradient, tuple(steps))
