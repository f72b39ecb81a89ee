"""The upstream gradient dout of a scalar function, multiplied in early.

`backward(cache, dout)` returns dout times the gradients. Multiplying each
gradient by dout is one more pass over it, after the matrix product that
usually makes it (dW1 = Xᵀ dZ1: a pass over D x H), which no compiler fuses
into the product. Reverse accumulation starts at the adjoints of the value:
dout multiplied into those instead (dt1 = 2/N · dout · t1, N x O) reaches
every later adjoint and gradient through the products and sums that carry
it, at the cost of a scalar factor where the adjoint is made.

`scale_adjoints` picks the backward bindings that take the factor: each
adjoint computed from no binding that already carries it. That is right
only if every later binding is homogeneous of degree one in those that carry
it, c(λa, λb) = λ c(a, b), or free of them, so the degree of each is worked
out from its operators (sums of terms of one degree, products adding
degrees, linear maps of one argument), and every gradient must come out of
degree one. Where any binding is not homogeneous (a square of an adjoint, an
operator the tables do not know) or a gradient is made from no such adjoint
(dU = 2 λ U - 2 R V), the gradients take dout themselves, as before.
"""

from __future__ import annotations

from ..ir.expr import Apply, Const, Expr, Var, apply, postorder, var
from ..ops import OPS
from .program import Binding, Program

# Operators whose result is the sum of their arguments' degrees (multilinear).
_PRODUCTS = frozenset({"mul", "matmul", "outer", "kron", "einsum", "multi_dot"})
# Operators linear in their first argument, the others constant.
_LINEAR = frozenset({"transpose", "sum", "trace", "diag", "diagm", "tril", "triu", "col",
                     "row", "cumsum", "revcumsum", "name", "adjoint", "div", "broadcast",
                     "broadcast_copy"})


def _degree(node: Apply, args: list) -> int | None:
    """The degree of `node` in the scaled bindings given its arguments'
    (None: not homogeneous of degree 0 or 1)."""
    if None in args:
        return None
    if not any(args):
        return 0
    op = node.op
    if op in _PRODUCTS:
        total = sum(args)
        return total if total <= 1 else None
    if op == "add":  # every term of one degree
        return args[0] if len(set(args)) == 1 else None
    if op == "subtract_product":  # a - A @ B
        return args[0] if args[0] == args[1] + args[2] else None
    if op in _LINEAR and not any(args[1:]):
        return args[0]
    if op == "solve" and args[0] == 0:   # A⁻¹ B, linear in B
        return args[1]
    return None


def _degrees(expr: Expr, scaled: dict) -> int | None:
    """The degree of `expr` in the bindings of `scaled` (name -> degree)."""
    degree: dict[Expr, int | None] = {}
    for node in postorder([expr]):
        if isinstance(node, Var):
            degree[node] = scaled.get(node.name, 0)
        elif isinstance(node, Apply):
            degree[node] = _degree(node, [degree[a] for a in node.args])
        else:
            degree[node] = 0
    return degree[expr]


def _times(dout: Var, expr: Expr) -> Expr:
    """dout · expr; a product's numeric coefficient and dout multiplied
    first, `(2 / N * dout) * t1`, so that the array takes one product."""
    if isinstance(expr, Apply) and expr.op == "mul" and isinstance(expr.args[0], Const):
        return apply(OPS["mul"], (apply(OPS["mul"], (expr.args[0], dout)), *expr.args[1:]))
    return apply(OPS["mul"], (dout, expr))


# The upstream scalar backward multiplies in: a name no problem can declare
# (a variable named dout is another value), which the code writes `dout`.
DOUT = "<dout>"


def scale_adjoints(program: Program, backward: list) -> tuple[list, dict]:
    """`backward` (the program's backward bindings, lowered) with `dout`
    multiplied into the first adjoints, and the expressions those had
    before; `backward` as given and {} where a binding is not homogeneous
    in them."""
    dout = var(DOUT, ())
    grads = {name for _, name in program.gradients}
    scaled: dict[str, int] = {}
    out, before = [], {}
    for b in backward:
        degree = _degrees(b.expr, scaled)
        if degree is None:
            return backward, {}
        if degree == 0 and b.role == "adjoint":
            before[b.name] = b.expr
            b, degree = Binding(b.name, _times(dout, b.expr), b.role, b.of), 1
        scaled[b.name] = degree
        out.append(b)
    if any(scaled.get(name) != 1 for name in grads):
        return backward, {}
    return out, before
