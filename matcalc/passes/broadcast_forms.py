"""A canonical-form rule for broadcasts (`simplify.canonical` applies it,
for comparison, not printing): what is constant along a summed axis leaves
the sum, a column or row of an elementwise expression is that expression of
columns or rows, and a product of a quotient is one quotient."""

from __future__ import annotations

from ..ir.expr import Const, Expr, is_op
from ..ops import div, mul, rebuild, reduce_sum


def broadcast_forms(node: Expr, computed: set) -> Expr | None:
    """(a ⊙ b)[:, None] = a[:, None] ⊙ b[:, None], likewise a / b, a + b, a ** k
    and rows; a ⊙ (b / c) = (a ⊙ b) / c;
    sum(v[:, None] ⊙ A, 1) = v ⊙ sum(A, 1), sum(A / v[:, None], 1) = sum(A, 1) / v
    (and along axis 0 with rows): what is constant along the axis leaves the sum."""
    if is_op(node, "col", "row") and is_op(node.args[0], "mul", "div", "add", "pow"):
        inner = node.args[0]
        return rebuild(inner, tuple(a if isinstance(a, Const) else rebuild(node, (a,))
                                    for a in inner.args))
    quotient = next((a for a in node.args if is_op(a, "div")), None) if is_op(node, "mul") \
        else None
    if quotient is not None:
        top = mul(*(quotient.args[0] if a is quotient else a for a in node.args))
        return div(top, quotient.args[1]) if top.shape == node.shape else None
    if not is_op(node, "sum") or node.param("axis") not in (0, 1) or node.args[0].ndim != 2:
        return None
    x, axis = node.args[0], node.param("axis")
    spread = "col" if axis == 1 else "row"
    if is_op(x, "div") and x.args[0].shape == x.shape and _vector(x.args[1], spread) is not None:
        return div(reduce_sum(x.args[0], axis), _vector(x.args[1], spread))
    flat = [a for a in x.args if _vector(a, spread) is not None] if is_op(x, "mul") else []
    rest = [a for a in x.args if a not in flat] if flat else []
    if not rest or mul(*rest).shape != x.shape:
        return None
    return mul(*(_vector(a, spread) for a in flat), reduce_sum(mul(*rest), axis))


def _vector(a: Expr, spread: str) -> Expr | None:
    """v for a = v[:, None] (spread "col") or v[None, :] ("row"), through
    elementwise products, quotients and constant powers; a scalar is itself."""
    if not a.shape:
        return a
    if is_op(a, spread):
        return a.args[0]
    if is_op(a, "mul", "div", "pow"):
        parts = [b if isinstance(b, Const) else _vector(b, spread) for b in a.args]
        return None if any(p is None for p in parts) else rebuild(a, tuple(parts))
    return None
