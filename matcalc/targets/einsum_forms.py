"""How the targets write a contraction (`contract`, an einsum), the lowered
forms of one (`tensordot`, `ordered_contract`: `passes.lowering` chooses
them) and a permutation of axes (`permute`).

Text and the Python targets write `einsum("ijk,kl->ijl", X, W)` (the
printer writes a batched matrix product `X @ W`, see `Printer`); NumPy
writes an `ordered_contract` with its pairwise contraction order,
`optimize=[...]`; LaTeX and Unicode write index notation, Σ over the summed
indices of the operands' entries. The array-API standard has no einsum:
`ARRAY_API_EINSUM` is a helper that contracts pairwise with `matmul`,
`permute_dims` and `reshape`.
"""

from __future__ import annotations

from ..ops.einsum_spec import split_spec
from . import precedence as P
from .forms import Form


def einsum_call(function: str) -> Form:
    """`function("spec", a, b)`; for a node with a `path` (an
    `ordered_contract`), `optimize=` that pairwise order."""
    def render(args, params):
        order = f", optimize={list(params['path'])!r}" if params.get("path") else ""
        return f'{function}("{params["spec"]}", {", ".join(args)}{order})'
    return Form(render)


def tensordot_call(module: str, keyword: str, permute: str) -> Form:
    """`module.tensordot(a, b, keyword=([..], [..]))`, its result permuted
    where the output's order needs it: by the method `.permute(...)`, or by
    the function `permute(x, ...)` when `permute` ends in '('."""
    def render(args, params):
        text = f"{module}.tensordot({args[0]}, {args[1]}, {keyword}=({list(params['a'])}, " \
               f"{list(params['b'])}))"
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
