"""Einsums the matrix core writes: a contraction of vectors and matrices as
@, ᵀ, ⊙, outer, diag, trace and sum; one operand of any order as a sum over
axes and a permutation; and which einsums are batched matrix products
(`matmul_pattern`, printed `A @ B`) or a product of them between
permutations (`permuted_matmul`), and which are one `tensordot`.
"""

from __future__ import annotations

from ..ir.expr import Expr, is_op
from .axes import reduce_sum
from .builders import col, diag, matmul, mul, outer, transpose
from .einsum_spec import split_spec
from .permute import permute


def matrix_form(terms: list[str], out: str, xs: list[Expr]) -> Expr | None:
    """The contraction in the matrix core, or None: operands and result of
    at most two indices, taken pairwise from the left while each partial
    result has at most two."""
    if len(out) > 2 or any(len(t) > 2 for t in terms):
        return None
    reduced = [_own_axes(t, x, terms[:k] + terms[k + 1:], out)
               for k, (t, x) in enumerate(zip(terms, xs))]
    terms, xs = [t for t, _ in reduced], [x for _, x in reduced]
    if len(xs) == 1:
        return _aligned(xs[0], terms[0], out)
    if len(xs) == 2:
        return _pair(terms, out, xs)
    later = "".join(terms[2:]) + out
    kept = "".join(dict.fromkeys(c for c in terms[0] + terms[1] if c in later))
    if len(kept) > 2:
        return None
    first = _pair(terms[:2], kept, xs[:2])
    if first is None:
        return None
    return matrix_form([kept] + terms[2:], out, [first] + xs[2:])


def _own_axes(term: str, x: Expr, others: list[str], out: str) -> tuple[str, Expr]:
    """An operand's diagonal taken ("ii" is diag) and its indices that no
    other operand or the output has summed."""
    if len(term) == 2 and term[0] == term[1]:
        term, x = term[0], diag(x)
    elsewhere = "".join(others) + out
    alone = [k for k, c in enumerate(term) if c not in elsewhere]
    if not alone:
        return term, x
    kept = "".join(c for c in term if c in elsewhere)
    return kept, reduce_sum(x, None if not kept else alone[0])


def _aligned(x: Expr, term: str, order: str) -> Expr:
    """x (indexed by `term`, a subset of `order`) broadcast against the
    axes `order`: transposed, a column or a row as needed."""
    if len(order) < 2 or term == order or len(term) == 0:
        return x
    if term == order[::-1]:
        return transpose(x)
    return col(x) if term == order[0] else x


def _pair(terms: list[str], out: str, xs: list[Expr]) -> Expr | None:
    """Two operands of at most two indices each (no index of one alone)."""
    (ta, tb), (a, b) = terms, xs
    shared = set(ta) & set(tb)
    summed = [c for c in ta if c in shared and c not in out]
    if len(summed) == 1 and shared == set(summed):
        c = summed[0]
        left = a if ta[-1] == c else transpose(a)
        right = b if tb[0] == c else transpose(b)
        product = matmul(left, right)
        free = ta.replace(c, "") + tb.replace(c, "")
        return product if free == out else transpose(product)
    order = out + "".join(summed)
    if len(order) > 2:
        return None
    if not summed and len(out) == 2 and {ta, tb} == {out[0], out[1]}:
        return outer(a, b) if ta == out[0] else outer(b, a)
    if not summed and (eye_form := _diagonal(ta, tb, a, b, out)) is not None:
        return eye_form
    if summed and out and set(ta) == set(order):
        order = ta                                      # Σ_i A_ij B_ij = sum(A * B, axis=0)
    product = mul(_aligned(a, ta, order), _aligned(b, tb, order))
    if not summed:
        return product
    return reduce_sum(product, None if not out else order.index(summed[0]))


def _diagonal(ta: str, tb: str, a: Expr, b: Expr, out: str) -> Expr | None:
    """v_i I_ij = diag(v)."""
    if is_op(b, "eye") and len(ta) == 1 and tb == out:
        return diag(a)
    if is_op(a, "eye") and len(tb) == 1 and ta == out:
        return diag(b)
    return None


def single_form(term: str, out: str, x: Expr) -> Expr | None:
    """One operand of any order, no index repeated: a sum over the indices
    not in `out`, then a permutation."""
    if len(set(term)) != len(term):
        return None
    summed = tuple(k for k, c in enumerate(term) if c not in out)
    if summed:
        x = reduce_sum(x, summed if len(summed) < len(term) else None)
        term = "".join(c for c in term if c in out)
    return permute(x, tuple(term.index(c) for c in out)) if term != out else x


def matmul_operands(terms: list[str], out: str, shapes: list) -> tuple[bool, bool] | None:
    """(whether a's last two axes are swapped, whether b's are) where the
    einsum is NumPy's `a @ b` of stacks of matrices, an operand possibly
    transposed (`X @ W.T`, `Q @ swapaxes(K, -1, -2)`), else None."""
    if len(terms) != 2:
        return None
    for flips in ((False, False), (False, True), (True, False), (True, True)):
        if any(f and len(t) < 2 for f, t in zip(flips, terms)):
            continue
        flipped = [_swapped(t) if f else t for f, t in zip(flips, terms)]
        if matmul_pattern(flipped, out, [_swapped(s) if f else s
                                         for f, s in zip(flips, shapes)]):
            return flips
    return None


def _swapped(items):
    """A term or shape with its last two entries exchanged."""
    return items[:-2] + items[-1:] + items[-2:-1]


def matmul_pattern(terms: list[str], out: str, shapes: list) -> bool:
    """Whether the einsum is NumPy's `a @ b` of stacks of matrices: a = ..ij
    (or j), b = ..jk (or j), the output ..ik with the batch indices aligned
    from the right (an axis of size 1 of one operand broadcast)."""
    if len(terms) != 2:
        return False
    (ta, tb), (sa, sb) = terms, shapes
    if len(ta) < 1 or len(tb) < 1 or max(len(ta), len(tb)) < 3:
        return False
    j = ta[-1]
    if (len(tb) == 1 and tb != j) or (len(tb) > 1 and tb[-2] != j):
        return False
    rows = ta[-2:-1] if len(ta) > 1 else ""
    cols = tb[-1:] if len(tb) > 1 else ""
    batch_a, batch_b = ta[:-2] if rows else "", tb[:-2] if cols else ""
    batch = out[:len(out) - len(rows) - len(cols)]
    if out[len(batch):] != rows + cols or len(batch) != max(len(batch_a), len(batch_b)):
        return False
    if len(set(rows + cols + j + batch)) != len(rows + cols + batch) + 1:
        return False
    return _aligned_batch(batch_a, sa, batch, ta + tb) and \
        _aligned_batch(batch_b, sb, batch, ta + tb)


def _aligned_batch(own: str, shape, batch: str, every: str) -> bool:
    """Each batch index of an operand is the output's at its position from
    the right, or an axis of size 1 of this operand alone (broadcast)."""
    start = len(batch) - len(own)
    return all(c == batch[start + k] or (shape[k] == 1 and every.count(c) == 1
                                          and c not in batch)
               for k, c in enumerate(own))


def permuted_matmul(terms: list[str], out: str) -> tuple | None:
    """(pa, pb, po) where the einsum of two operands is a product of stacks
    of matrices once its operands and result are permuted:
    permute(permute(a, pa) @ permute(b, pb), po), each a tuple of axes (None
    where the order is already right). Every index is a batch index (in a,
    b and the output), the one summed index (in a and b), the row (a and
    the output) or the column (b and the output); else None."""
    if len(terms) != 2 or any(len(set(t)) != len(t) for t in terms):
        return None
    ta, tb = terms
    batch = [c for c in out if c in ta and c in tb]
    summed = [c for c in ta if c in tb and c not in out]
    rows = [c for c in ta if c not in tb]
    cols = [c for c in tb if c not in ta]
    if len(summed) != 1 or len(rows) != 1 or len(cols) != 1 \
            or set(rows + cols + batch) != set(out) or not batch:
        return None
    order_a = "".join(batch + rows + summed)
    order_b = "".join(batch + summed + cols)
    result = "".join(batch + rows + cols)
    return tuple(None if order == term else tuple(term.index(c) for c in order)
                 for order, term in ((order_a, ta), (order_b, tb))) + \
        (None if result == out else tuple(result.index(c) for c in out),)


def tensordot_axes(spec: str) -> tuple | None:
    """(axes of a, axes of b, the permutation of the result or None), each
    a tuple, where the einsum of two operands a, b is one tensordot over
    those axes, permuted: every index both share summed, none repeated or
    summed in one operand alone; else None."""
    terms, out = split_spec(spec)
    if len(terms) != 2:
        return None
    a, b = terms
    shared = [c for c in a if c in b]
    if any(len(set(t)) != len(t) for t in terms) or any(c in out for c in shared) \
            or any(c not in out and c not in shared for c in a + b) or not shared:
        return None
    result = [c for c in a if c not in shared] + [c for c in b if c not in shared]
    perm = tuple(result.index(c) for c in out)
    return (tuple(a.index(c) for c in shared), tuple(b.index(c) for c in shared),
            None if perm == tuple(range(len(perm))) else perm)
