"""The numeric lowering: how the code computes each value, one pass.

Mathematics and numerics part here. Every choice of how a value is computed
in floating point, rather than what it is, lives in this module:

- `plan` (for every program; `build` calls it before naming values):
  solve(A, B) is A⁻¹ B where inv(A) is computed anyway; a scale factor c of
  c X moves onto the matrix products X feeds; and, in a `numeric` program
  (the one generated code runs), σ(t) (1 − σ(t)) is computed from one exp.
- `lower` (between a program and a code target): each binding is rewritten
  into the node kinds the target computes fastest, as far as its
  `Capabilities` allow: Σ x² and tr(A B) as one `einsum`, a chain of matrix
  products as one `multi_dot`, a step beside other factors as a boolean
  `mask`, a − A B as `subtract_product`, written into the product's
  memory, and A B + c or (A B) ⊙ m as the product updated in place
  (`update`, `updates.py`), a broadcast 1 ⊙ x as x broadcast, never an array of ones
  times x (`broadcast`, a view, or `broadcast_copy`, a new array, where it
  is a result; a constant c 1 as one `full` array, and placed into zeros
  as c alone, `fill`), where(k, 1, 0) as k
  cast to the floating type (`indicator`), and an einsum (`contract`) as
  one `tensordot`, as `@` of stacks of matrices between permutations, or
  in a pairwise order chosen here (`ordered_contract`). A printer then
  only prints the lowered nodes.

The lowered node kinds are operators of `lowered_ops` (`LOWERED`), not of
the table: they have a shape and no derivative, and no pass but the printers
ever sees them. Lowered nodes are made with `apply`, never with the builders,
whose identities would undo the lowering.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import sympy

from ..ir.expr import Apply, Const, Expr, Var, apply, const, is_op, postorder
from ..ops import OPS, _coefficient, add, matmul, mul, rebuild
from ..ops.einsum_matrix import matmul_operands, permuted_matmul, tensordot_axes
from ..ops.einsum_spec import split_spec
from .lowered_ops import (BROADCAST, BROADCAST_COPY, COPY, EINSUM, FILL, FULL, INDICATOR,
                          LOGICAL_NOT, MASK, MATRIX_TRANSPOSE, MULTI_DOT, ORDERED_CONTRACT,
                          SUBTRACT_PRODUCT, TENSORDOT)
from .lowered_scales import divided_outers, scaled_outer
from .results import held, results, viewed
from .updates import update


@dataclass(frozen=True)
class Capabilities:
    """What a code target's array library offers beyond elementwise
    arithmetic, matrix products and the operators' forms; `lower` uses only
    what is switched on (the array-API target: full contractions, printed
    as `vecdot`, product chains, a - A @ B as a + A @ (-B), tensordot and
    `@` between permutations, but no einsum order: `_einsum` goes left to right)."""

    einsum: bool = False           # full contractions: Σ x², Σ_ij A_ij B_ji in one call
    multi_dot: bool = False        # a product chain in one call that picks the order
    out: bool = False              # a - A @ B computed into the product's memory
    masks: bool = False            # a boolean array multiplies a floating one
    item_assignment: bool = False  # x[index] = value (the loops of a full Hessian)
    tensordot: bool = False        # an einsum summing all two operands share: one tensordot
    batched_matmul: bool = False   # an einsum as `@` of stacks between permutations
    contraction_order: bool = False  # an einsum of operands in a pairwise order chosen here
    broadcasts: bool = False       # c 1 ⊙ x as x broadcast to the shape (no array of ones)
    casts: bool = False            # where(k, c 1, 0) as c times k cast to the floating type
    vector_first: bool = False     # Aᵀ v as v @ A: no transposed view (NumPy: 0.3 µs a call)
    updates: bool = False          # t = A @ B, then t += c, t *= m: terms into the new product


# Everything off: plain sums, traces, products and subtractions.
PLAIN = Capabilities()

# einsum subscripts: Σ x² by the number of axes, and tr(A B).
SQUARES = {1: "i,i", 2: "ij,ij"}
TRACE_OF_PRODUCT = "ij,ji"

# Each symbolic dimension's size when the contraction order is chosen: all
# equal, so the order minimises the number of indices of each intermediate.
PATH_SIZE = 8


# ------------------------------------------------------------------ plan ---

def inverse_times(node: Expr, chosen: dict) -> bool:
    """`inv(A) @ B` where the inverse is needed nowhere else (so the code
    solves A X = B instead)."""
    return is_op(node, "matmul") and is_op(node.args[0], "inv") and node.args[0] not in chosen


def scaled(node: Expr) -> tuple[Const, Expr] | None:
    """(c, x) for c * x, also behind an `adjoint` barrier; else None."""
    if is_op(node, "adjoint"):
        node = node.args[0]
    if is_op(node, "mul") and len(node.args) == 2 \
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
            if (cx := scaled(n)) is not None and cx[1] in forward and only_in_products(n)}


def _scaled_operand(x: Expr, scaled_copies: set) -> Expr | None:
    """The scaled array behind a matrix-product operand, if any."""
    if x in scaled_copies:
        return x
    if is_op(x, "transpose") and x.args[0] in scaled_copies:
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
    if not is_op(node, "mul"):
        return None
    for s in node.args:
        if not is_op(s, "sigmoid"):
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
    if is_op(t, "mul"):
        kept = tuple(a for a in t.args if a != const(-1)
                     and not (isinstance(a, Var) and a.domain == "sign"))
        if kept:
            t = kept[0] if len(kept) == 1 else apply(OPS["mul"], kept)
    e = apply(OPS["exp"], (apply(OPS["mul"], (const(-1), apply(OPS["abs"], (t,)))),))
    one = const(sympy.Float(1.0))  # NumPy 2 adds a float to an array faster than an int
    return apply(OPS["div"], (e, apply(OPS["pow"], (apply(OPS["add"], (one, e)), const(2)))))


def _rescaled_product(node: Apply, args: tuple, scaled_copies: set) -> Expr:
    """(c X) @ (d Y) as c d (X @ Y), its operands' scales multiplied out."""
    scale = sympy.Integer(1)
    for x in filter(None, (_scaled_operand(x, scaled_copies) for x in node.args)):
        scale *= scaled(x)[0].value
    product = apply(OPS["matmul"], args)
    return product if scale == 1 else apply(OPS["mul"], (const(scale), product))


def _times_inverse(inverse: Expr, b: Expr) -> Expr:
    """A⁻¹ B for a solve, A⁻¹ 1 as the row sums of A⁻¹ (the builder's
    rule: a product with ones is a sum, never a product with an array of
    ones)."""
    if is_op(b, "ones"):
        return matmul(inverse, b)
    return apply(OPS["matmul"], (inverse, b))


def _planned(node: Expr, plan: dict, parents: dict, inverted: set, scaled_copies: set,
             numeric: bool) -> Expr:
    """How the code computes `node`, its arguments already planned."""
    args = tuple(plan[a] for a in node.args)
    a = node.args[0] if is_op(node, "solve") else None
    if numeric and (slope := _sigmoid_slope(node, parents)) is not None:
        s, c, t = slope
        kept = tuple(plan[x] for x in node.args if x is not c and x is not s)
        return _slope(plan[t]) if not kept else apply(OPS["mul"], kept + (_slope(plan[t]),))
    if a in inverted:
        return _times_inverse(apply(OPS["inv"], args[:1]), args[1])
    if is_op(a, "transpose") and a.args[0] in inverted:
        inverse = apply(OPS["inv"], (plan[a.args[0]],))
        return _times_inverse(apply(OPS["transpose"], (inverse,)), args[1])
    if node in scaled_copies:
        return plan[scaled(node)[1]]  # its products take the scale
    if is_op(node, "matmul") and any(_scaled_operand(x, scaled_copies) for x in node.args):
        return _rescaled_product(node, args, scaled_copies)
    if args != node.args and node.op == "add":
        return add(*args)  # terms whose scale moved may now be alike
    if args != node.args and node.op == "mul" and all(isinstance(x, Const) or x.shape == node.shape
                                                      for x in args) \
            and any(is_op(x, "mul") and isinstance(x.args[0], Const) for x in args):
        return mul(*args)  # a scale that moved here meets this product's: 2 (2 A) is 4 A
    if args != node.args and node.op in ("outer", "div"):
        # a scale that moved in meets the others: outer(u, 2 u) is 2 u uᵀ,
        # (2 A) / (2 b) is A / b
        return rebuild(node, args)
    if args != node.args:
        return apply(OPS[node.op], args, node.params)
    return node


def plan(roots: list, numeric: bool, moved_scales: bool = True) -> dict[Expr, Expr]:
    """How the code computes each node of `roots`: the node itself, except
    - solve(A, B) is A⁻¹ @ B, and solve(Aᵀ, B) is A⁻ᵀ @ B, wherever inv(A) is
      computed anyway, so A is factorised once;
    - with `moved_scales`, (c X) @ Y is c (X @ Y) where X is a forward value
      and c X only feeds matrix products, so no scaled copy of X is made;
    - with `numeric`, a factor σ(t) (1 − σ(t)), where σ(t) is needed nowhere
      else, is computed from one exp (`_slope`)."""
    nodes = list(postorder(roots))
    inverted = {n.args[0] for n in nodes if is_op(n, "inv")}
    parents = _parents(nodes, roots)
    scaled_copies = _product_operands(nodes, roots, parents) if moved_scales else set()
    out: dict[Expr, Expr] = {}
    for node in nodes:
        out[node] = _planned(node, out, parents, inverted, scaled_copies, numeric)
    return out


# ----------------------------------------------------------------- lower ---

def squared(node: Expr) -> Expr | None:
    """x for x ** 2 or square(x), else None."""
    if is_op(node, "square") or (is_op(node, "pow") and isinstance(node.args[1], Const)
                               and node.args[1].value == 2):
        return node.args[0]
    return None


def _contraction(node: Apply) -> tuple[str, Expr, Expr] | None:
    """(subscripts, a, b) when `node` is a full contraction of a and b:
    Σ x² = Σ x ⊙ x over a whole array x; tr(A B) = Σ_ij A_ij B_ji (n²
    products where forming A B takes n³); tr(A Cᵀ) = Σ_ij A_ij C_ij."""
    if node.op == "sum" and node.param("axis") is None:
        x = squared(node.args[0])
        if isinstance(x, Var) and x.ndim in SQUARES:
            return SQUARES[x.ndim], x, x
    if node.op == "trace" and is_op(node.args[0], "matmul"):
        a, b = node.args[0].args
        if is_op(b, "transpose"):
            return SQUARES[2], a, b.args[0]
        return TRACE_OF_PRODUCT, a, b
    return None


def _chain(node: Apply) -> list[Expr] | None:
    """The factors of A @ B @ C @ ..., three or more with matrices inside
    (one call picks the cheapest order from the shapes at run time)."""
    if node.op != "matmul":
        return None
    chain, head = [node.args[1]], node.args[0]
    while is_op(head, "matmul"):
        chain.append(head.args[1])
        head = head.args[0]
    chain.append(head)
    if len(chain) < 3 or any(m.ndim != 2 for m in chain[1:-1]):
        return None
    return chain[::-1]


def _masked(args: tuple) -> tuple | None:
    """A product's factors with each step(x) as the mask (x > 0) and each
    condition cast to 0/1 as the condition itself, after the other factors
    (a number first: -a * (x > 0), never -(x > 0)); None when no such
    factor stands beside another factor."""
    coeff = args[:1] if isinstance(args[0], Const) else ()
    factors = args[len(coeff):]
    flags = [is_op(f, "step", INDICATOR.name) for f in factors]
    if len(factors) < 2 or all(flags) or not any(flags):
        return None
    return coeff + tuple(f for f, flag in zip(factors, flags) if not flag) + tuple(
        apply(MASK, f.args) if is_op(f, "step") else f.args[0]
        for f, flag in zip(factors, flags) if flag)


def contraction_path(spec: str) -> tuple:
    """NumPy's greedy pairwise order ('einsum_path', (0, 1), ...) for `spec`,
    every dimension taken as PATH_SIZE (no arrays made: broadcast views)."""
    terms, _ = split_spec(spec)
    views = [np.broadcast_to(np.zeros(()), (PATH_SIZE,) * len(t)) for t in terms]
    return tuple(np.einsum_path(spec, *views, optimize="greedy")[0])


def written_as_matmul(node: Apply) -> bool:
    """Whether the printers write the einsum `a @ b` (or `b @ a`): NumPy's
    product of stacks of matrices, an operand's last two axes swapped or
    not (`matmul_operands`); that notation is theirs, not lowered here."""
    terms, out = split_spec(node.param("spec"))
    shapes = [a.shape for a in node.args]
    return len(terms) == 2 and (matmul_operands(terms, out, shapes) is not None or
                                matmul_operands(terms[::-1], out, shapes[::-1]) is not None)


def _operand(x: Expr, axes: tuple | None) -> Expr:
    """An operand of a product of stacks with its axes in the order `axes`:
    x itself (None), its last two swapped (`matrix_transpose`), else a
    `permute`."""
    if axes is None:
        return x
    if list(axes) == [*range(x.ndim - 2), x.ndim - 1, x.ndim - 2]:
        return apply(MATRIX_TRANSPOSE, (x,))
    return apply(OPS["permute"], (x,), (("axes", tuple(axes)),))


def permuted_product(node: Apply, args: tuple) -> Expr | None:
    """The einsum of `args` (`node`'s operands, lowered) as a product of
    stacks of matrices between permutations, permute(permute(a, pa) @
    permute(b, pb), po), as in `transpose(A @ V, (0, 2, 1, 3))`: one batched
    BLAS product where an einsum loops over the batch indices; None where
    the einsum is no such product (`permuted_matmul`)."""
    plan = permuted_matmul(*split_spec(node.param("spec")))
    if plan is None:
        return None
    product = apply(OPS["matmul"], tuple(_operand(x, p) for x, p in zip(args, plan[:2])))
    return product if plan[2] is None else apply(OPS["permute"], (product,), (("axes", plan[2]),))


def _contraction_form(node: Apply, args: tuple, caps: Capabilities) -> Expr | None:
    """An einsum as the target computes it fastest, else None (the einsum
    itself): two operands with every shared index summed as one `tensordot`
    (one BLAS product of the operands reshaped: X @ W of a B x T x D X is one
    gemm, not B of them); unless the printers write it `a @ b`, a product
    of stacks of matrices between permutations; else, of several operands,
    an `ordered_contract` in the pairwise order chosen now."""
    spec = node.param("spec")
    if caps.tensordot and (axes := tensordot_axes(spec)) is not None:
        return apply(TENSORDOT, args, tuple(zip(("a", "b", "perm"), axes)))
    if written_as_matmul(node):
        return None
    if caps.batched_matmul and (product := permuted_product(node, args)) is not None:
        return product
    if caps.contraction_order and len(args) > 1:
        return apply(ORDERED_CONTRACT, args, (("spec", spec), ("path", contraction_path(spec))))
    return None


def _broadcast(args: tuple, shape: tuple, fresh: bool) -> Expr | None:
    """A product c 1 ⊙ x ⊙ … with the all-ones array as x ⊙ … broadcast to
    its shape: a `full` array of a constant, else a view (`broadcast`) or,
    where the array is a result (`fresh`), a new one (`broadcast_copy`);
    never the ones and a product. None where no factor is ones."""
    rest = tuple(a for a in args if not is_op(a, "ones"))
    if len(rest) == len(args) or not rest:
        return None
    x = rest[0] if len(rest) == 1 else apply(OPS["mul"], rest)
    if x.shape == shape:
        return x
    kind = FULL if isinstance(x, Const) else BROADCAST_COPY if fresh else BROADCAST
    return apply(kind, (x,), (("shape", shape),))


def _filled(node: Apply, g: Expr) -> Expr | None:
    """zeros with c 1 at a key (g lowered: ones, or c as a `full` array) as
    zeros with c placed there, which item assignment broadcasts (`fill`):
    one array, no ones; None for any other g."""
    c = const(1) if is_op(g, "ones") else g.args[0] if is_op(g, FULL.name) else None
    return None if c is None else apply(FILL, (c,), node.params)


def _indicator(node: Apply, k: Expr) -> Expr | None:
    """where(k, c 1, d 1) of k's own shape (k lowered) as c times k cast to
    the floating type plus d times (not k) cast, each term exact on its side
    (where(k, 0, c) as c times (not k) cast): arrays in the inputs' floating
    type, no ones, no select, where NumPy's where of two numbers is an
    integer (or float64) array; None for any other where."""
    a, b = (_coefficient(x) for x in node.args[1:])
    if a == (0, None):
        a, b, k = b, a, apply(LOGICAL_NOT, (k,))
    (c, rest), (d, other) = a, b
    if k.shape != node.shape or c == d \
            or not all(r is None or is_op(r, "ones") for r in (rest, other)):
        return None
    if d == 0:
        return _scaled_cast(c, k)
    return apply(OPS["add"], (_scaled_cast(c, k), _scaled_cast(d, apply(LOGICAL_NOT, (k,)))))


def _scaled_cast(number, mask: Expr) -> Expr:
    """number times the mask cast to the floating type."""
    cast = apply(INDICATOR, (mask,))
    return cast if number == 1 else apply(OPS["mul"], (const(number), cast))


def _lowered(node: Expr, low: dict, caps: Capabilities, fresh: bool = False) -> Expr:
    """`node` as the target computes it, its descendants lowered in `low`
    (`fresh`: the node is a result, returned to the caller)."""
    if not isinstance(node, Apply):
        return node
    if caps.einsum and (found := _contraction(node)) is not None:
        subscripts, a, b = found
        return apply(EINSUM, (low[a], low[b]), (("subscripts", subscripts),))
    if caps.multi_dot and (chain := _chain(node)) is not None:
        return apply(MULTI_DOT, tuple(low[m] for m in chain))
    args = tuple(low[a] for a in node.args)
    scaled = scaled_outer(args) if node.op == "mul" else divided_outers(args) \
        if node.op == "div" else None
    if scaled is not None:
        return scaled
    if caps.broadcasts and node.op == "mul" and \
            (spread := _broadcast(args, node.shape, fresh)) is not None:
        return spread  # before masks: a boolean broadcast alone is no float
    if caps.broadcasts and caps.item_assignment and node.op == "unindex" \
            and (filled := _filled(node, args[0])) is not None:
        return filled
    if caps.masks and node.op == "mul" and (masked := _masked(args)) is not None:
        args = masked
    if caps.casts and node.op == "where" and (cast := _indicator(node, args[0])) is not None:
        return cast
    if node.op == "contract" and (form := _contraction_form(node, args, caps)) is not None:
        return form
    if caps.vector_first and node.op == "matmul" and args[1].ndim == 1 \
            and is_op(args[0], "transpose") and args[0].args[0].ndim == 2:
        return apply(OPS["matmul"], (args[1], args[0].args[0]))
    return node if args == node.args else apply(OPS[node.op], args, node.params)


def lower_expr(expr: Expr, caps: Capabilities, fresh: bool = False) -> Expr:
    """An expression in the node kinds a target with `caps` computes
    (`fresh`: its value is a result, so a broadcast it is, or is a view
    of, is a new array)."""
    shared = set(viewed(expr)) if fresh else set()
    low: dict[Expr, Expr] = {}
    for node in postorder([expr]):
        low[node] = _lowered(node, low, caps, node in shared)
    return low[expr]


def _subtracted_product(expr: Expr) -> tuple[Expr, Expr, Expr] | None:
    """(a, A, B) when `expr` is a - A @ B, the product of the result's shape
    (an array, not a scalar) and A no product itself, else None."""
    if not (is_op(expr, "add") and len(expr.args) == 2 and expr.ndim > 0):
        return None
    term = expr.args[1]
    if not (is_op(term, "mul") and len(term.args) == 2 and isinstance(term.args[0], Const)
            and term.args[0].value == -1):
        return None
    product = term.args[1]
    if is_op(product, "matmul") and product.shape == expr.shape \
            and not is_op(product.args[0], "matmul"):
        return expr.args[0], *product.args
    return None


def lower_binding(expr: Expr, caps: Capabilities, fresh: bool = False) -> Expr:
    """The value a statement assigns: lowered, and a - A @ B computed into
    the new product's memory where the target can write into an array
    (NumPy adds in place only into the left operand of '-')."""
    expr = lower_expr(expr, caps, fresh)
    if caps.out and (split := _subtracted_product(expr)) is not None:
        return apply(SUBTRACT_PRODUCT, split)
    if caps.updates and (updated := update(expr)) is not None:
        return updated
    return expr


def subtracted(node: Apply) -> Expr:
    """The plain a - A @ B that a `subtract_product` node computes."""
    a, left, right = node.args
    product = apply(OPS["matmul"], (left, right))
    return apply(OPS["add"], (a, apply(OPS["mul"], (const(-1), product))))


def lower(program, caps: Capabilities, written=frozenset()):
    """The program (a `passes.program.Program`) as a target with `caps`
    computes it: the same bindings, each value lowered; a broadcast that is
    a result, or that a result views, is a new array the caller may write
    into (not one `written` into a larger array: a view is copied there),
    and so is a gradient that is an array held elsewhere (`held`)."""
    fresh, copied = results(program, written), held(program, written)
    return dataclasses.replace(program, bindings=tuple(
        dataclasses.replace(b, expr=_copied(lower_binding(b.expr, caps, b.name in fresh),
                                            b.name in copied))
        for b in program.bindings))


def _copied(expr: Expr, copy: bool) -> Expr:
    return apply(COPY, (expr,)) if copy else expr
