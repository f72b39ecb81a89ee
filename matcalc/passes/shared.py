"""Which nodes of a program compute the same value, and how often each is
used: the analysis `program` names values by. A sum inside a longer sum
is used by it as a whole (`SubSums`); a node equal to an earlier one up to
the order of its sums' and products' terms, the grouping of a product and
its transposes is that one (`twins_of`)."""

from __future__ import annotations

from collections import Counter

from ..ir.expr import Apply, Expr, is_op
from ..ops import OPS, is_symmetric
from ..ops.builders import CHAIN

# Operators that are views or free to recompute: never worth a name, and a
# use of one is a use of its argument.
CHEAP = frozenset(name for name, op in OPS.items() if op.cheap)


def uses_of(order: list, roots: list, sums: SubSums) -> dict[Expr, int]:
    """How often each node is used (a root once more); an inlined view
    repeats its argument, so the argument counts its uses too."""
    uses: dict[Expr, int] = {}
    for node in order:
        for a in sums.record(node):
            uses[a] = uses.get(a, 0) + 1
    for r in roots:
        uses[r] = uses.get(r, 0) + 1
    for node in reversed(order):
        if isinstance(node, Apply) and node.op in CHEAP and uses.get(node, 0) > 1:
            for a in node.args:
                uses[a] += uses[node] - 1
    return uses


class SubSums:
    """The sums seen so far, by their terms: a sum whose terms include every
    term of an earlier sum uses that sum, not its terms (t1 = X W + b in
    t1 − lse(t1), so X W is used once), as `_with_bound_sums` prints it."""

    def __init__(self):
        self.by_term: dict[Expr, list[Expr]] = {}
        self.used: dict[Expr, tuple] = {}  # each sum's arguments, a sum for its terms

    def record(self, node: Expr) -> tuple:
        """Record `node` (a sum: its terms) and return the arguments it uses
        (`used`): called for each node in order, by `uses_of`."""
        if not is_op(node, "add") or len(set(node.args)) != len(node.args):
            return node.args
        found = next((s for a in node.args for s in self.by_term.get(a, ())
                      if len(s.args) < len(node.args) and all(t in node.args for t in s.args)),
                     None)
        for a in node.args:
            self.by_term.setdefault(a, []).append(node)
        self.used[node] = node.args if found is None else (
            found, *(a for a in node.args if a not in found.args))
        return self.used[node]


def twins_of(order: list) -> dict[Expr, tuple[Expr, bool]]:
    """Each node an earlier one computes, with that one and whether it is
    its transpose: a product chain that is the transpose of an earlier one
    (Xᵀ Xᵀ after X X), and a node equal to an earlier one up to the order
    of the terms of its sums and products and of its dot products (c ⊙ (y −
    x·t) after (y − t·x) ⊙ c). Computed once, the later is the earlier's name."""
    first: dict = {}                # canonical key: the first node, its number
    canon: dict[Expr, int] = {}
    flipped: dict = {}
    of: dict[Expr, int] = {}        # a transposed node: the number of what it transposes
    twins: dict[Expr, tuple[Expr, bool]] = {}
    for node in order:
        if is_op(node, "name", "adjoint"):  # a mark computes nothing
            canon[node] = canon[node.args[0]]
            continue
        chain = _chain_key(node, canon) if is_op(node, "matmul") and node.ndim == 2 else None
        key = chain or _canonical_key(node, canon)
        earlier, canon[node] = first.setdefault(key, (node, len(first)))
        if earlier is not node and (node.shape or is_op(node, "matmul")):
            twins[node] = (earlier, False)
        elif chain is not None:
            twin = flipped.get(chain)
            if twin is not None and twin is not node:
                twins[node] = (twin, True)
            flipped.setdefault(("chain", tuple((c, t if t is None else not t)
                                               for c, t in reversed(chain[1]))), node)
        elif (untransposed := _elementwise_of_transposes(node, canon, of)) in first:
            twins[node] = (first[untransposed][0], True)
        if node in twins and twins[node][1]:
            of[node] = canon[twins[node][0]]
        elif is_op(node, "transpose"):
            of[node] = canon[node.args[0]]
    return twins


def _elementwise_of_transposes(node: Expr, canon: dict, of: dict) -> tuple | None:
    """The key of f(A, B) for an elementwise f(Aᵀ, Bᵀ) of transposed
    matrices (and scalars), which is f(A, B)ᵀ: step(Z1ᵀ) is step(Z1)ᵀ;
    `of` numbers the matrix each transposed node is the transpose of."""
    if not (isinstance(node, Apply) and node.ndim == 2
            and (OPS[node.op].elementwise or node.op in ("add", "mul", "div", "pow"))):
        return None
    if not all(not a.shape or a in of and a.shape == node.shape for a in node.args):
        return None
    return _key(node, [of[a] if a.shape else canon[a] for a in node.args],
                node.op in ("add", "mul"))


def _chain_key(node: Expr, canon: dict) -> tuple | None:
    """A product of matrices as its factors by number, each transposed or
    not, in any grouping ((A B)ᵀ C is Bᵀ Aᵀ C), through marks; None past
    CHAIN factors."""
    factors, stack = [], [(node, False)]
    while stack:
        if len(factors) + len(stack) > CHAIN:
            return None
        x, flip = stack.pop()
        while is_op(x, "name", "adjoint", "transpose"):
            flip ^= x.op == "transpose"
            x = x.args[0]
        if is_op(x, "matmul") and all(a.ndim == 2 for a in x.args):
            a, b = x.args
            stack.extend([(a, True), (b, True)] if flip else [(b, False), (a, False)])
        else:  # a symmetric factor is its own transpose: None, either way
            factors.append((canon[x], None if _square_symmetric(x) else flip))
    return ("chain", tuple(factors))


def _square_symmetric(x: Expr) -> bool:
    """Whether x is a matrix equal to its transpose by its structure."""
    return x.ndim == 2 and is_symmetric(x)


def _canonical_key(node: Expr, canon: dict) -> tuple:
    """What a node computes, its arguments by number: the terms of a sum or
    product, and the two vectors of a dot product, in any order."""
    if not isinstance(node, Apply):
        return ("leaf", node)
    if node.op == "matmul" and node.ndim == 1 and {a.ndim for a in node.args} == {1, 2}:
        (v, m), flip = (node.args, False) if node.args[0].ndim == 1 else (node.args[::-1], True)
        base = m.args[0] if is_op(m, "transpose") else m
        orient = is_op(m, "transpose") != flip and not _square_symmetric(base)  # vᵀ M is Mᵀ v
        return ("vector @", canon[v], canon[base], orient)
    dot = node.op == "matmul" and not node.shape and all(a.ndim == 1 for a in node.args)
    return _key(node, [canon[a] for a in node.args], node.op in ("add", "mul") or dot)


def _key(node: Apply, args: list, commutes: bool) -> tuple:
    """The node's operator and parameters over numbered arguments, in any
    order where the operator `commutes`."""
    return (node.op, frozenset(Counter(args).items()) if commutes else tuple(args), node.params)
