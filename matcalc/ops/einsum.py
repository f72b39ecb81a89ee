"""Contractions of any order: the `contract` operator (an einsum) and the
`permute` operator (a permutation of axes, a view).

`contract` holds its specification in the normal form of `einsum_spec`
("ij,jk->ik", letters i, j, k, ... in order of first appearance). One
derivative rule covers every contraction: the adjoint of operand i is the
einsum of the adjoint and the other operands with i's subscripts as output
(an index repeated in operand i placed on the diagonal by an identity, an
index of operand i alone put back by broadcasting). The builder `contract`
returns the matrix form where there is one (`einsum_matrix`), so
einsum("ij,jk->ik", A, B) is A @ B.
"""

from __future__ import annotations

import sympy

from ..errors import ShapeError
from ..ir.expr import Expr, apply, const, is_op
from ..ir.shapes import fmt
from .axes import expand_dims
from .builders import (_SYMBOL_BUILDERS, BATCHED, BUILDERS, _coefficient, add, eye, is_zero, mul,
                       ones, zeros)
from .core import OPS, Op, _register
from .einsum_matrix import matrix_form, single_form
from .einsum_spec import canonical, fresh, parse_spec, sizes, spec_text, split_spec
from .shape_rules import _matmul_shape


def einsum(spec: str, *xs: Expr) -> Expr:
    """NumPy's einsum(spec, *xs), checked against the operands' shapes."""
    terms, out = parse_spec(spec, [x.ndim for x in xs])
    sizes(terms, [x.shape for x in xs], spec)
    return contract(terms, out, list(xs))


def contract(terms: list[str], out: str, xs: list[Expr], shape=None) -> Expr:
    """Σ over the letters not in `out` of Π_k xs[k][terms[k]]: constant
    factors taken out, `ones` and identities absorbed, the matrix form
    where there is one, else a `contract` node. An index of `out` that no
    operand has is broadcast (its size from `shape`, the result's shape)."""
    size = sizes(terms, [x.shape for x in xs])
    shape = tuple(size[c] for c in out) if shape is None else tuple(shape)
    if any(is_zero(x) for x in xs):
        return zeros(shape)
    scale = sympy.Integer(1)
    kept_terms, kept = [], []  # the operands less their constant factors and `ones`
    for term, x in zip(terms, xs):
        if is_op(x, "permute"):                     # Σ over transpose(X, p): X relabelled
            term = "".join(term[x.param("axes").index(k)] for k in range(x.ndim))
            x = x.args[0]
        elif is_op(x, "transpose") and x.ndim == 2:
            term, x = term[::-1], x.args[0]
        c, rest = _coefficient(x)
        scale *= c
        if rest is not None and not is_op(rest, "ones"):
            kept_terms.append(term)
            kept.append(rest)
    counted = set("".join(terms)) - set(out) - set("".join(kept_terms))
    scale *= sympy.Mul(*(size[c] for c in counted))   # Σ over an index of `ones` alone
    kept_terms, kept = _absorb_eyes(kept_terms, kept, out)
    present = "".join(c for c in out if any(c in t for t in kept_terms))
    core = _core(kept_terms, present, kept) if kept else const(1)
    return mul(const(scale), _broadcast_back(core, present, out, shape))


def _absorb_eyes(terms: list[str], xs: list[Expr], out: str):
    """Σ_j X_..j.. I_jk = X_..k..: an identity whose index is summed renames
    it in the other operands."""
    for k, (term, x) in enumerate(zip(terms, xs)):
        if not is_op(x, "eye") or len(set(term)) != 2:
            continue
        a, b = term
        others = "".join(terms[:k] + terms[k + 1:])
        gone = b if b not in out and b in others else \
            a if a not in out and a in others else None
        if gone is not None:
            keep = a if gone == b else b
            rest = [t.replace(gone, keep) for t in terms[:k] + terms[k + 1:]]
            return _absorb_eyes(rest, xs[:k] + xs[k + 1:], out.replace(gone, keep))
    return terms, xs


def _broadcast_back(core: Expr, present: str, out: str, shape) -> Expr:
    """`core` (indexed by `present`) broadcast to `out`: an index no operand
    has is an axis of size 1 and a broadcast `ones`, never a dense copy."""
    if present == out:
        return core
    missing = [k for k, c in enumerate(out) if c not in present]
    if all(shape[k] == 1 for k in missing):             # axes of size 1 only: no ones
        return expand_dims(core, tuple(missing)) if core.shape else mul(core, ones(shape))
    lead = next(k for k in range(len(out) + 1) if k not in missing)  # broadcasting adds these
    inner = tuple(k - lead for k in missing if k >= lead)
    return mul(ones(shape), expand_dims(core, inner) if inner else core)


def _core(terms: list[str], out: str, xs: list[Expr]) -> Expr:
    """The contraction of operands with no constant factor."""
    scalars = [x for t, x in zip(terms, xs) if not t]
    if scalars:
        rest = [(t, x) for t, x in zip(terms, xs) if t]
        inner = _core([t for t, _ in rest], out, [x for _, x in rest]) if rest else const(1)
        return mul(*scalars, inner)
    form = matrix_form(terms, out, xs)
    if form is None and len(xs) == 1:
        form = single_form(terms[0], out, xs[0])
    if form is None:
        form = _broadcast_product(terms, out, xs)
    if form is not None:
        return form
    terms, out = canonical(terms, out)
    return apply(OPS["contract"], tuple(xs), (("spec", spec_text(terms, out)),))


def _broadcast_product(terms: list[str], out: str, xs: list[Expr]) -> Expr | None:
    """Nothing summed and each operand's indices in the output's order: the
    elementwise product of the operands with axes of size 1 inserted
    (x_i Z_ijk = x[:, None, None] * Z), else None."""
    if any(c not in out for t in terms for c in t) or \
            any(list(t) != sorted(set(t), key=out.index) for t in terms):
        return None
    factors = []
    for term, x in zip(terms, xs):
        start = out.index(term[0])                    # leading axes: broadcasting's own
        inserted = tuple(k - start for k, c in enumerate(out) if k > start and c not in term)
        factors.append(expand_dims(x, inserted) if inserted else x)
    return mul(*factors)


def _contract_shape(s, p):
    terms, out = split_spec(p["spec"])
    if len(terms) != len(s) or any(len(t) != len(x) for t, x in zip(terms, s)):
        raise ShapeError(f"einsum '{p['spec']}' of {', '.join(fmt(x) for x in s)}")
    size = sizes(terms, list(s), p["spec"])
    return tuple(size[c] for c in out)


def _contract_vjp(g, node, i):
    """The adjoint of operand i: Σ over the other indices of g and the other
    operands, indexed as operand i; a repeated index of operand i on the
    diagonal (times an identity), an index of operand i alone broadcast."""
    terms, out = split_spec(node.param("spec"))
    term = terms[i]
    written, eyes = "", []
    for c in term:                      # "ii": the second i is a fresh index j, I_ij
        if c in written:
            d = fresh(node.param("spec") + written + "".join(e for e, _ in eyes))
            eyes.append((c + d, eye(node.args[i].shape[len(written)])))
            c = d
        written += c
    operands = [(out, g) if k == i else (t, x) for k, (t, x) in enumerate(zip(terms, node.args))]
    operands += eyes
    return contract([t for t, _ in operands], written, [x for _, x in operands],
                    node.args[i].shape)


def _contract_jvp(node, d):
    """d einsum(X₁, …, Xₖ) = Σᵢ einsum(X₁, …, dXᵢ, …, Xₖ)."""
    terms, out = split_spec(node.param("spec"))
    return add(*(contract(terms, out, [*node.args[:k], dk, *node.args[k + 1:]])
                 for k, dk in enumerate(d) if dk is not None))


_register(Op("contract", _contract_shape, _contract_vjp, nargs=None, params=(("spec", ""),),
             jvp=_contract_jvp, rule="product rule (einsum)",
             identity="<G, einsum(.., X, ..)> = <einsum(G, ..) indexed as X, X>"))




def batched_matmul(a: Expr, b: Expr) -> Expr:
    """NumPy's `a @ b` of stacks of matrices: the einsum ..ij,..jk->..ik,
    batch axes aligned from the right, an axis of size 1 broadcast (its own
    index, summed over one term: a squeeze)."""
    shape = _matmul_shape([a.shape, b.shape], {})
    rows, cols = int(a.ndim > 1), int(b.ndim > 1)
    batch = fresh("", len(shape) - rows - cols)
    i, j, k = fresh(batch, 3)
    spare = iter(fresh(batch + i + j + k, a.ndim + b.ndim))

    def indices(x: Expr, matrix: str) -> str:
        own = x.shape[:x.ndim - len(matrix)]
        start = len(batch) - len(own)
        return "".join(batch[start + p] if n != 1 or shape[start + p] == 1 else next(spare)
                       for p, n in enumerate(own)) + matrix
    terms = [indices(a, i + j if rows else j), indices(b, j + k if cols else j)]
    return contract(terms, batch + (i if rows else "") + (k if cols else ""), [a, b])


BUILDERS["einsum"] = einsum
BATCHED["matmul"] = batched_matmul
_SYMBOL_BUILDERS["contract"] = lambda *xs, spec: contract(*split_spec(spec), list(xs))
