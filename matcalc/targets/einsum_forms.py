"""How the targets write a contraction (`contract`, an einsum) and a
permutation of axes (`permute`).

Text and the Python targets write `einsum("ijk,kl->ijl", X, W)` (the
printer writes a batched matrix product `X @ W`, see `Printer`); NumPy adds
the pairwise contraction order chosen here, at generation time; LaTeX and
Unicode write index notation, Σ over the summed indices of the operands'
entries. The array-API standard has no einsum: `ARRAY_API_EINSUM` is a
helper that contracts pairwise with `matmul`, `permute_dims` and `reshape`.
"""

from __future__ import annotations

import numpy as np

from ..ops.einsum_spec import split_spec
from . import precedence as P
from .forms import Form

# Each symbolic dimension's size when the contraction order is chosen: all
# equal, so the order minimises the number of indices of each intermediate.
PATH_SIZE = 8


def contraction_path(spec: str) -> list:
    """NumPy's greedy pairwise order ('einsum_path', (0, 1), ...) for `spec`,
    every dimension taken as PATH_SIZE (no arrays made: broadcast views)."""
    terms, _ = split_spec(spec)
    views = [np.broadcast_to(np.zeros(()), (PATH_SIZE,) * len(t)) for t in terms]
    return np.einsum_path(spec, *views, optimize="greedy")[0]


def einsum_call(function: str, path: bool = False) -> Form:
    """`function("spec", a, b)`; with `path`, NumPy's `optimize=` the order
    chosen at generation time (one operand needs none)."""
    def render(args, params):
        spec = params["spec"]
        order = f", optimize={contraction_path(spec)!r}" if path and len(args) > 1 else ""
        return f'{function}("{spec}", {", ".join(args)}{order})'
    return Form(render)


def tensordot_axes(spec: str) -> tuple | None:
    """(axes of a, axes of b, the permutation of the result or None) where
    the einsum of two operands is one `tensordot`: every index shared by
    both summed, none repeated or summed in one operand alone; else None."""
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
    return ([a.index(c) for c in shared], [b.index(c) for c in shared],
            None if perm == tuple(range(len(perm))) else perm)


def tensordot_call(module: str, keyword: str, permute: str) -> Form:
    """`module.tensordot(a, b, keyword=([..], [..]))`, its result permuted
    where the output's order needs it: by the method `.permute(...)`, or by
    the function `permute(x, ...)` when `permute` ends in '('."""
    def render(args, params):
        text = f"{module}.tensordot({args[0]}, {args[1]}, {keyword}=({params['a']}, " \
               f"{params['b']}))"
        if not params["perm"]:
            return text
        if permute.endswith("("):
            return f"{permute}{text}, {params['perm']})"
        return f"{text}.{permute}{params['perm']}"
    return Form(render, P.POSTFIX)


def axes_call(function: str) -> Form:
    """`function(x, (0, 2, 1))`: a permutation of axes."""
    return Form(lambda a, p: f"{function}({a[0]}, {tuple(p['axes'])})")


def index_notation(spec: str, entries: list, summation) -> str:
    """Σ over the summed indices of the product of the operands' entries:
    `entries[k](indices)` writes operand k's entry, `summation(indices)`
    the sum sign ("" when nothing is summed)."""
    terms, out = split_spec(spec)
    summed = "".join(dict.fromkeys(c for c in "".join(terms) if c not in out))
    body = " ".join(entry(t) for entry, t in zip(entries, terms))
    return f"{summation(summed)} {body}" if summed else body


# The array-API helper: each operand's repeated indices (diagonals) and its
# indices no other operand or the output has (sums) first, then pairs
# contracted left to right by one batched matmul each.
ARRAY_API_EINSUM = '''
def _einsum(xp, spec, *arrays):
    """einsum(spec, *arrays) in the array API standard (which has none):
    diagonals by linalg.diagonal, lone indices summed, then each pair as
    one batched matmul of reshaped, permuted operands."""
    inputs, out = spec.split("->")
    terms = inputs.split(",")
    items = []
    for k, (term, x) in enumerate(zip(terms, arrays)):
        others = "".join(terms[:k] + terms[k + 1:]) + out
        term, x = _einsum_diagonals(xp, term, x)
        lone = tuple(a for a, c in enumerate(term) if c not in others)
        if lone:
            x = xp.sum(x, axis=lone)
            term = "".join(c for c in term if c in others)
        items.append((term, x))
    (term, x), rest = items[0], items[1:]
    for k, (other, y) in enumerate(rest):
        later = "".join(t for t, _ in rest[k + 1:]) + out
        term, x = _einsum_pair(xp, term, x, other, y, later)
    return xp.permute_dims(x, tuple(term.index(c) for c in out))


def _einsum_diagonals(xp, term, x):
    """Each index written twice in `term` read on the diagonal."""
    while len(set(term)) < len(term):
        c = next(c for c in term if term.count(c) > 1)
        a, b = term.index(c), term.index(c, term.index(c) + 1)
        rest = [k for k in range(len(term)) if k not in (a, b)]
        x = xp.linalg.diagonal(xp.permute_dims(x, tuple(rest) + (a, b)))
        term = "".join(term[k] for k in rest) + c
    return term, x


def _einsum_pair(xp, ta, a, tb, b, later):
    """Σ over the indices of both not in `later`: batch (both, kept),
    free (one, kept) and summed indices as one matmul."""
    batch = [c for c in ta if c in tb and c in later]
    summed = [c for c in ta if c in tb and c not in later]
    free_a = [c for c in ta if c not in tb]
    free_b = [c for c in tb if c not in ta]
    size = dict(zip(ta, a.shape)) | dict(zip(tb, b.shape))
    a = xp.permute_dims(a, tuple(ta.index(c) for c in batch + free_a + summed))
    b = xp.permute_dims(b, tuple(tb.index(c) for c in batch + summed + free_b))
    lead = tuple(size[c] for c in batch)
    m, n, s = (_einsum_count([size[c] for c in cs]) for cs in (free_a, free_b, summed))
    product = xp.reshape(a, lead + (m, s)) @ xp.reshape(b, lead + (s, n))
    shape = lead + tuple(size[c] for c in free_a + free_b)
    return "".join(batch + free_a + free_b), xp.reshape(product, shape)


def _einsum_count(sizes):
    count = 1
    for n in sizes:
        count *= n
    return count
'''
