"""The node builders: `add`, `mul`, `matmul`, ... build the graph.

The builders apply the algebra every node obeys on construction: n-ary sums
and products are flattened, scalar constants are folded into one leading
coefficient, like terms are collected, and the symbolic `zeros`/`ones`/`eye`
never survive where they are neutral, so no derivative rule ever builds a
dense zero or identity array (as JAX's `Zero`).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import sympy

from ..errors import DomainError, ShapeError
from ..ir.expr import Apply, Const, Expr, Var, apply, const, const_power, is_const, rewrite
from ..ir.shapes import Shape, broadcast
from .core import ALIASES, OPS, _is, _view, unnamed
from .shape_rules import _matmul_shape
from .symmetry import CHAIN, is_symmetric


def zeros(shape: Shape) -> Expr:
    """The symbolic zero of a shape (a scalar zero is the constant 0)."""
    return const(0) if not shape else apply(OPS["zeros"], (), (("shape", tuple(shape)),))


def ones(shape: Shape) -> Expr:
    """The symbolic all-ones array of a shape."""
    return const(1) if not shape else apply(OPS["ones"], (), (("shape", tuple(shape)),))


def eye(n) -> Expr:
    """The symbolic n x n identity."""
    return apply(OPS["eye"], (), (("shape", (n, n)),))


def is_zero(node: Expr) -> bool:
    return is_const(node, 0) or _is(node, "zeros")


def _coefficient(node: Expr) -> tuple[sympy.Expr, Expr | None]:
    """Split `c * rest` into (c, rest); rest is None for a constant."""
    if isinstance(node, Const):
        return node.value, None
    if _is(node, "mul") and isinstance(node.args[0], Const):
        rest = node.args[1:]
        return node.args[0].value, rest[0] if len(rest) == 1 else apply(OPS["mul"], rest)
    return sympy.Integer(1), node




def _term_key(x: Expr):
    """What makes two terms alike: the factors of a product in any order, the
    matrices of a product chain in any grouping."""
    if _is(x, "mul"):
        return frozenset(Counter(x.args).items())
    if _is(x, "matmul"):
        chain, stack = [], [x]
        while stack:
            if len(chain) + len(stack) > CHAIN:
                return x                                   # a long chain is its own key
            node = stack.pop()
            if _is(node, "matmul"):
                stack.extend(reversed(node.args))
            else:
                chain.append(node)
        return ("@", tuple(chain))
    return x


def add(*terms: Expr) -> Expr:
    """Elementwise sum with broadcasting; collects like terms (x + 2x = 3x)."""
    shape = broadcast(*(t.shape for t in terms))
    flat: list[Expr] = []
    for t in terms:  # the sum broadcasts its terms: no term needs `ones` for it
        for a in (t.args if _is(t, "add") else (t,)):
            a = _without_ones(a)                           # 1 (x + y) is itself a sum
            flat.extend(a.args if _is(a, "add") else (a,))
    constant = sympy.Integer(0)
    coeffs: dict[Expr, sympy.Expr] = {}
    first: dict[object, Expr] = {}   # like terms: x ⊙ y and y ⊙ x are one term
    for t in flat:
        if is_zero(t):
            continue
        c, rest = _coefficient(t)
        if rest is None:
            constant += c
        else:
            key = _term_key(rest)
            rest = first.setdefault(key, rest)
            coeffs[rest] = coeffs.get(rest, 0) + c
    if len(coeffs) == 1 and constant.is_number and float(constant) in (1.0, -1.0):
        (rest, c), = coeffs.items()
        if c == 1 and float(constant) == 1 and (m := _view(rest, "expm1")) is not None:
            return exp(m.args[0])                 # 1 + expm1(x) = exp(x)
        if c == 1 and float(constant) == -1 and (e := _view(rest, "exp")) is not None:
            return func("expm1", e.args[0])       # exp(x) − 1, without cancellation
    out = [const(constant)] if constant != 0 else []
    out += [mul(const(c), rest) for rest, c in coeffs.items() if c != 0]
    if not out:
        return zeros(shape)
    node = out[0] if len(out) == 1 else apply(OPS["add"], tuple(out))
    if node.shape != shape:
        node = mul(ones(shape), node)
    return node


def _without_ones(t: Expr) -> Expr:
    """A term of a sum without its broadcast `ones` factor (c 1 is c)."""
    if _is(t, "ones"):
        return const(1)
    if _is(t, "mul") and any(_is(a, "ones") for a in t.args):
        return mul(*(a for a in t.args if not _is(a, "ones")))
    return t


# Longest product whose factors a product it joins takes over (flattening a
# longer one into every product built from it costs O(k²) along a chain).
FLAT = 32


def mul(*factors: Expr) -> Expr:
    """Elementwise product with broadcasting; one leading scalar coefficient."""
    shape = broadcast(*(f.shape for f in factors))
    flat: list[Expr] = []
    for f in factors:  # a product longer than FLAT stays one factor: chains grow by nesting
        flat.extend(f.args if _is(f, "mul") and len(f.args) <= FLAT else (f,))
    for k, f in enumerate(flat):  # (a / b) * b = a
        if _is(f, "div") and f.args[1] in flat and \
                (not f.args[1].shape or f.args[0].shape == f.shape):
            flat.remove(f.args[1])
            flat[flat.index(f)] = f.args[0]
            return mul(*flat)
    flat = _powers(flat)
    c = sympy.Integer(1)
    rest: list[Expr] = []
    for f in flat:
        if isinstance(f, Const):
            c *= f.value
        elif is_zero(f):
            return zeros(shape)
        else:
            rest.append(f)
    if c == 0:
        return zeros(shape)
    kept = [f for f in rest if not _is(f, "ones")]
    if len(kept) == 2:
        vector, identity = kept[::-1] if _is(kept[0], "eye") else kept
        column, other = kept if _is(kept[0], "col") else kept[::-1]
        v = vector if vector.ndim == 1 else vector.args[0] if _is(vector, "col", "row") else None
        if _is(identity, "eye") and v is not None and v.shape[0] == identity.shape[0]:
            # a I = diag(a) when a is as long as I (not a length-1 axis that
            # broadcasts), itself built (diag(c 1) = c I), so multiplied again,
            # with the broadcast ones the other factors had
            return mul(const(c), ones(shape), diag(v))
        if _is(column, "col") and _is(other, "outer"):
            b, d = other.args                         # a[:, None] * (b dᵀ) = (a ⊙ b) dᵀ
            return mul(const(c), ones(shape), outer(mul(column.args[0], b), d))
    if broadcast((), *(f.shape for f in kept)) != shape:
        kept.insert(0, ones(shape))
    if c != 1 or not kept:
        kept.insert(0, const(c))
    return kept[0] if len(kept) == 1 else apply(OPS["mul"], tuple(kept))


_ONE = sympy.Integer(1)


def _powers(factors: list[Expr]) -> list[Expr]:
    """x * x ** 2 = x ** 3: equal bases with constant exponents combined."""
    exponents: dict[Expr, sympy.Expr] = {}
    for f in factors:
        if not isinstance(f, Const):
            base, e = (f.args[0], f.args[1].value) if _is(f, "pow") and \
                isinstance(f.args[1], Const) else (f, _ONE)
            exponents[base] = exponents.get(base, 0) + e
    if len(exponents) == sum(not isinstance(f, Const) for f in factors):
        return factors
    return [f for f in factors if isinstance(f, Const)] + \
        [power(base, const(e)) for base, e in exponents.items()]


def neg(x: Expr) -> Expr:
    return mul(const(-1), x)


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, neg(b))


def div(a: Expr, b: Expr) -> Expr:
    """Elementwise quotient; division by a constant is a coefficient."""
    if is_zero(b):
        raise DomainError("division by zero: the divisor is the constant 0")
    if isinstance(b, Const):
        return mul(const(1 / b.value), a)
    shape = broadcast(a.shape, b.shape)
    if is_zero(a):
        return zeros(shape)
    if a is b:                                             # x / x = 1 (where x ≠ 0)
        return ones(shape)
    c, rest = _coefficient(a)
    if _is(rest, "ones") and b.shape == shape:
        a = const(c)                                       # (c 1) / b = c / b
    if (e := _view(a, "exp")) is not None:                 # exp(x) / Σ exp(x) = softmax
        total = _reduction_of(b, "sum", a)
        if total is not None:
            return softmax(e.args[0], total.param("axis"))
    s = _view(b, "add")
    if is_const(a, 1) and s is not None and len(s.args) == 2 and is_const(s.args[0], 1) \
            and (e := _view(s.args[1], "exp")) is not None:
        return func("sigmoid", neg(e.args[0]))            # 1 / (1 + e^-z) = σ(z)
    return apply(OPS["div"], (a, b))


def power(x: Expr, e: Expr) -> Expr:
    """Elementwise power `x ** e`."""
    if isinstance(e, Const):
        if is_zero(x) and e.value.is_negative:
            raise DomainError("division by zero: the constant 0 to a negative power")
        if e.value == 1:
            return x
        if e.value == 0:
            return ones(x.shape)
        if isinstance(x, Const):
            return const_power(x.value, e.value)
    return apply(OPS["pow"], (x, e))


def matmul(a: Expr, b: Expr) -> Expr:
    """NumPy's `a @ b` for vectors and matrices."""
    if not a.shape or not b.shape:
        raise ShapeError("'@' needs vectors or matrices, not scalars; use '*'")
    shape = _matmul_shape([a.shape, b.shape], {})
    if a.ndim == 1 and b.ndim == 2 and is_symmetric(b):
        a, b = b, a  # xᵀS = (Sx)ᵀ: one canonical form for both
    if _is(a, "diagm"):
        return mul(col(a.args[0]) if b.ndim == 2 else a.args[0], b)   # diag(v) X = v[:, None] X
    if _is(b, "diagm") and a.ndim == 2:
        return mul(a, b.args[0])                                       # X diag(v) = X v[None, :]
    product = _broadcast_product(a, b, shape)
    if product is not None:
        return product
    if _is(a, "ones"):                                                 # 1 B: column sums, broadcast
        sums = reduce_sum(b, 0 if b.ndim == 2 else None)
        return sums if a.ndim == 1 else mul(ones(shape), row(sums) if b.ndim == 2 else sums)
    if _is(b, "ones"):                                                 # A 1: row sums, broadcast
        sums = reduce_sum(a, 1 if a.ndim == 2 else None)
        return sums if b.ndim == 1 else mul(ones(shape), col(sums) if a.ndim == 2 else sums)
    if _is(a, "kron") and _is(b, "kron"):  # (A ⊗ B)(C ⊗ D) = AC ⊗ BD
        (p, q), (r, s) = a.args, b.args
        if p.shape[1] == r.shape[0] and q.shape[1] == s.shape[0]:
            return kron(matmul(p, r), matmul(q, s))
    ca, ra = _coefficient(a)
    cb, rb = _coefficient(b)
    if (ca != 1 or cb != 1) and ra is not None and rb is not None:
        return mul(const(ca * cb), matmul(ra, rb))  # (2A) B = 2 (A B)
    scale_a, a = _scaled_identity(a)
    scale_b, b = _scaled_identity(b)
    if scale_a is not None or scale_b is not None:
        scale = mul(scale_a or const(1), scale_b or const(1))
        if a is None and b is None:
            return mul(scale, eye(shape[0]))
        return mul(scale, b if a is None else a if b is None else matmul(a, b))
    if is_zero(a) or is_zero(b):
        return zeros(shape)
    return apply(OPS["matmul"], (a, b))


def _broadcast_product(a: Expr, b: Expr, shape: Shape) -> Expr | None:
    """A product with a broadcast vector 1 vᵀ or v 1ᵀ, never formed:
    A (1 vᵀ) = (A 1) vᵀ, (v 1ᵀ) B = v (1ᵀ B), A (v 1ᵀ) = (A v) 1ᵀ and
    (1 vᵀ) B = 1 (vᵀ B); for a vector x, x (1 vᵀ) = (xᵀ 1) v and
    xᵀ (v 1ᵀ) = (xᵀ v) 1ᵀ."""
    for m, other, first in ((b, a, False), (a, b, True)):
        if not (_is(m, "mul") and len(m.args) == 2 and _is(m.args[0], "ones") and m.ndim == 2):
            continue
        kind, v = _broadcast_vector(m.args[1])
        if kind is None:
            continue
        if kind == ("col" if first else "row"):             # the sums of `other`
            if other.ndim == 1:
                return mul(reduce_sum(other), v)
            return outer(v, reduce_sum(other, 0)) if first else outer(reduce_sum(other, 1), v)
        inner = matmul(v, other) if first else matmul(other, v)
        return mul(ones(shape), inner if other.ndim == 1 else row(inner) if first else col(inner))
    return None


def _broadcast_vector(x: Expr) -> tuple:
    """("col", v) for v[:, None], ("row", v) for v[None, :] or a vector v
    (which broadcasts as a row), else (None, None)."""
    if _is(x, "col", "row"):
        return x.op, x.args[0]
    return ("row", x) if x.ndim == 1 else (None, None)


def symmetric_part(g: Expr) -> Expr:
    """(G + Gᵀ) / 2, the gradient by a symmetric matrix: the symmetric G
    with dL = tr(G dS) for every symmetric dS."""
    return g if is_symmetric(g) else mul(const(sympy.Rational(1, 2)), add(transpose(g), g))


def _scaled_identity(x: Expr) -> tuple:
    """(s, None) for s * eye(n) with s a scalar (a constant or a computed
    scalar, so A (s I) = s A is never a product with a dense identity);
    (None, x) for anything else."""
    if _is(x, "eye"):
        return const(1), None
    if _is(x, "mul") and sum(_is(a, "eye") for a in x.args) == 1 and \
            all(_is(a, "eye") or not a.shape for a in x.args):
        return mul(*(a for a in x.args if not _is(a, "eye"))), None
    return None, x


def transpose(x: Expr) -> Expr:
    """`x.T`: a no-op on scalars, vectors and symmetric matrices."""
    if x.ndim < 2 or is_symmetric(x):
        return x
    if _is(x, "transpose"):
        return x.args[0]
    if _is(x, "zeros", "ones"):
        return apply(OPS[x.op], (), (("shape", x.shape[::-1]),))
    return apply(OPS["transpose"], (x,))


def _axis(x: Expr, axis: int | None, what: str) -> int | None:
    """A reduction axis as 0, 1 or None (a vector's only axis is None)."""
    if axis is not None and -x.ndim <= axis < 0:
        axis += x.ndim
    if x.ndim == 1 and axis == 0:
        return None
    if not x.shape and axis is not None:
        raise ShapeError(f"{what} over axis {axis} of a scalar")
    return axis


def expand(g: Expr, axis: int | None) -> Expr:
    """A reduction's result made to broadcast against its input again."""
    return col(g) if axis == 1 else g


def spread(b: Expr) -> tuple[Expr, int | None]:
    """(r, axis): the operand `b` of an elementwise operation is r repeated
    along `axis` of the other operand (NumPy broadcasting, orientation
    explicit): r[:, None] along axis 1, a bare vector r or r[None, :] along
    axis 0 (a vector lines up with the last axis), a scalar along every axis
    (None). So `X - r` undoes a reduction r over `axis` of X exactly when
    spread(b) gives that axis, whatever the sizes (X may be square)."""
    if _is(b, "col"):
        return b.args[0], 1
    if _is(b, "row"):
        return b.args[0], 0
    return b, (0 if b.ndim == 1 else None)


def _reduction_of(b: Expr, op: str, x: Expr) -> Expr | None:
    """The reduction `op(x, axis)` that `b` repeats along its own axis, or
    None (a reduction over axis 1 written without [:, None] lines up with
    the columns, not the rows: not a match)."""
    r, axis = spread(unnamed(b))
    r = _view(r, op)
    if r is not None and _alike(r.args[0], x) \
            and r.param("axis") == (axis if x.ndim == 2 else None):
        return r
    return None


def reduce_sum(x: Expr, axis: int | None = None) -> Expr:
    """`sum(x, axis)`: over everything (axis None), rows (0) or columns (1)."""
    axis = _axis(x, axis, "sum")
    if not x.shape:
        return x
    c, rest = _coefficient(x)
    if (_is(rest, "col") and axis == 1) or (_is(rest, "row") and axis == 0):
        return mul(const(c), rest.args[0])                 # sum(c v[:, None], axis=1) = c v
    if _is(x, "diagm") and axis is not None:
        return x.args[0]
    if _is(x, "diag") and axis is None:
        return func("trace", x.args[0])                    # sum(diag(X)) = tr(X)
    if axis is not None and c != 1 and _is(rest, "col", "row"):
        return mul(const(c), reduce_sum(rest, axis))       # sum(c V, axis) = c sum(V, axis)
    if axis is None and c != 1 and rest is not None:
        return mul(const(c), reduce_sum(rest))             # sum(c X) = c sum(X)
    if _is(x, "transpose") and axis is not None:
        return reduce_sum(x.args[0], 1 - axis)             # sum(Xᵀ, 0) = sum(X, 1)
    node = apply(OPS["sum"], (x,), (("axis", axis),))
    if is_zero(x):
        return zeros(node.shape)
    if _is(rest, "ones"):                                  # sum(c 1) = c · count 1
        count = sympy.Mul(*x.shape) if axis is None else x.shape[axis]
        return mul(const(c * count), ones(node.shape))
    return node


def mean(x: Expr, axis: int | None = None) -> Expr:
    """`mean(x, axis)` = sum(x, axis) / (number of terms)."""
    total = reduce_sum(x, axis)
    count = sympy.Mul(*x.shape) if axis is None or x.ndim == 1 else x.shape[axis % x.ndim]
    return mul(const(1 / sympy.sympify(count)), total)


def softmax(x: Expr, axis: int | None = None) -> Expr:
    """exp(x) / sum(exp(x), axis), computed stably."""
    return func("softmax", x, axis=_axis(x, axis, "softmax"))


def logsumexp(x: Expr, axis: int | None = None) -> Expr:
    """log(sum(exp(x), axis)), computed stably."""
    axis = _axis(x, axis, "logsumexp")
    return x if not x.shape else func("logsumexp", x, axis=axis)


def diag(x: Expr) -> Expr:
    """NumPy's diag: a vector's diagonal matrix, or a square matrix's diagonal."""
    if x.ndim == 1:
        c, rest = _coefficient(x)
        if _is(rest, "ones"):
            return mul(const(c), eye(x.shape[0]))           # diag(c 1) = c I
        return func("diagm", x)
    if x.ndim == 2:
        if _is(x, "diagm"):
            return x.args[0]
        if _is(x, "outer"):
            return mul(*x.args)                   # diag(a bᵀ) = a ⊙ b
        if _is(x, "eye", "ones"):
            return ones((x.shape[0],))                 # diag(I) = diag(1 1ᵀ) = 1
        return func("diag", x)
    raise ShapeError("diag needs a vector or a square matrix, got a scalar")


def log(x: Expr) -> Expr:
    """log, in its stable forms: log(1 + u) = log1p(u), log(1 + exp(z)) =
    softplus(z), log(sigmoid(z)) = −softplus(−z), log(1 − σ(z)) =
    −softplus(z), log softmax(z) = z − logsumexp(z), log Σ exp(z) =
    logsumexp(z), log(exp(z)) = z; through named intermediates as well."""
    if (e := _view(x, "exp")) is not None:
        return e.args[0]
    if (s := _view(x, "sigmoid")) is not None:
        return neg(func("softplus", neg(s.args[0])))
    if (s := _view(x, "softmax")) is not None:            # log softmax = x − lse(x)
        axis = s.param("axis")
        return sub(s.args[0], expand(logsumexp(s.args[0], axis), axis))
    if (s := _view(x, "sum")) is not None and (e := _view(s.args[0], "exp")) is not None:
        return logsumexp(e.args[0], s.param("axis"))       # log Σ exp = logsumexp
    s = _view(x, "add")
    if s is not None and len(s.args) == 2 and is_const(s.args[0], 1):
        u = s.args[1]
        c, rest = _coefficient(unnamed(u))
        if c == -1 and (g := _view(rest, "sigmoid")) is not None:
            return neg(func("softplus", g.args[0]))        # log(1 − σ(z)) = −softplus(z)
        e = _view(u, "exp")
        return func("softplus", e.args[0]) if e is not None else func("log1p", u)
    return func("log", x)


def exp(x: Expr) -> Expr:
    """exp; exp(x − logsumexp(x)) is softmax(x), exp(log(z)) is z (through
    named intermediates as well)."""
    if (g := _view(x, "log")) is not None:
        return g.args[0]
    if (s := _view(x, "add")) is not None:
        for k, term in enumerate(s.args):
            c, rest = _coefficient(unnamed(term))
            if c != -1 or rest is None:
                continue
            others = s.args[:k] + s.args[k + 1:]
            inner = _reduction_of(rest, "logsumexp",
                                  others[0] if len(others) == 1 else add(*others))
            if inner is not None:
                return softmax(inner.args[0], inner.param("axis"))
    return func("exp", x)


def maximum(a: Expr, b: Expr) -> Expr:
    """Elementwise max(a, b)."""
    return func("maximum", a, b)


def minimum(a: Expr, b: Expr) -> Expr:
    """Elementwise min(a, b)."""
    return func("minimum", a, b)


def func(name: str, *args: Expr, **params) -> Expr:
    """Apply the table entry `name` (no algebra beyond the shape rule)."""
    return apply(OPS[name], tuple(args), tuple(sorted(params.items())))


def kron(a: Expr, b: Expr) -> Expr:
    """A ⊗ B; I ⊗ I is the identity."""
    if _is(a, "eye") and _is(b, "eye"):
        return eye(a.shape[0] * b.shape[0])
    ca, ra = _coefficient(a)
    cb, rb = _coefficient(b)
    if (ca != 1 or cb != 1) and ra is not None and rb is not None:
        return mul(const(ca * cb), kron(ra, rb))
    return func("kron", a, b)


def unkron_left(g: Expr, b: Expr) -> Expr:
    """The adjoint of kron(A, B) for A; for G = I it is tr(B) I."""
    if _is(g, "eye") and b.shape[0] == b.shape[1]:
        return mul(func("trace", b), eye(sympy.cancel(g.shape[0] / b.shape[0])))
    return func("unkron_left", g, b)


def unkron_right(g: Expr, a: Expr) -> Expr:
    """The adjoint of kron(A, B) for B; for G = I it is tr(A) I."""
    if _is(g, "eye") and a.shape[0] == a.shape[1]:
        return mul(func("trace", a), eye(sympy.cancel(g.shape[0] / a.shape[0])))
    return func("unkron_right", g, a)


def named(name: str, x: Expr) -> Expr:
    """The intermediate `name = x`."""
    return apply(OPS["name"], (x,), (("name", name),))


# A product or sum of more terms is kept whole before a rule extends it, so
# long chains (sin(sin(...))) grow by nesting rather than by copying.
LONG = 8


def shared_adjoint(g: Expr) -> Expr:
    """`g` kept whole where several rules use it; a symbolic array stays
    open (c I, c 1, a broadcast c 1 vᵀ), so the products built from it
    still absorb it and it never becomes a dense array."""
    if not isinstance(g, Apply) or g.op in ("ones", "zeros", "eye", "adjoint", "name") \
            or _stays_open(g):
        return g
    return apply(OPS["adjoint"], (g,))


def _stays_open(g: Expr) -> bool:
    """Whether g is s I (s a scalar), c 1, c 1 ⊙ v[:, None] (or v[None, :])
    or c X for a variable X: nothing to compute that the products cannot
    take."""
    if not _is(g, "mul"):
        return False
    if any(_is(a, "eye") for a in g.args) and all(_is(a, "eye") or not a.shape
                                                  for a in g.args):
        return True                                        # s I, s a computed scalar
    rest = [a for a in g.args if not isinstance(a, Const) and not _is(a, "ones", "eye")]
    if len(rest) == len(g.args) - 1 == 1 and isinstance(rest[0], Var):
        return True
    return not rest or (len(rest) == 1 and _broadcast_vector(rest[0])[0] is not None
                        and any(_is(a, "ones") for a in g.args))


def col(v: Expr) -> Expr:
    """A vector as an n x 1 column: `v[:, None]`; (c 1)[:, None] is c 1."""
    c, rest = _coefficient(v)
    if _is(rest, "ones"):
        return mul(const(c), ones((v.shape[0], sympy.Integer(1))))
    return apply(OPS["col"], (v,))


def row(v: Expr) -> Expr:
    """A vector as a 1 x n row: `v[None, :]`; (c 1)[None, :] is c 1."""
    c, rest = _coefficient(v)
    if _is(rest, "ones"):
        return mul(const(c), ones((sympy.Integer(1), v.shape[0])))
    return apply(OPS["row"], (v,))


def outer(x: Expr, y: Expr) -> Expr:
    """x yᵀ."""
    c, rest = _coefficient(y)
    if c != 1 and rest is not None:
        return mul(const(c), outer(x, rest))
    return apply(OPS["outer"], (x, y))


def unbroadcast(g: Expr, shape: Shape) -> Expr:
    """Adjoint of broadcasting `shape` up to `g.shape`: sum the broadcast axes."""
    if not shape:
        return reduce_sum(g)
    if len(shape) == 1 and shape[0] == 1 and g.shape[-1] != 1:
        return mul(ones(shape), reduce_sum(g))
    while g.ndim > len(shape):
        g = reduce_sum(g, 0 if g.ndim == 2 else None)
    if g.ndim == 2 and g.shape != tuple(shape):
        if shape[0] == 1 and g.shape[0] != 1:
            g = row(reduce_sum(g, 0))
        if shape[1] == 1 and g.shape[1] != 1:
            g = col(reduce_sum(g, 1))
    return g



def solve(a: Expr, b: Expr) -> Expr:
    """A⁻¹ B without the inverse; A⁻¹(cI) = c A⁻¹ and A⁻¹(cB) = c A⁻¹B."""
    scale, rest = _scaled_identity(b)
    if rest is None:
        return mul(scale, func("inv", a))
    scale, rest = _coefficient(b)
    if scale != 1 and rest is not None:
        return mul(const(scale), func("solve", a, rest))
    return func("solve", a, b)


# Operators written with symbols rather than called by name (`diagm` is
# written `diag`, which picks it for a vector).
OPERATORS = frozenset({"add", "mul", "div", "pow", "matmul", "transpose", "col", "row",
                       "name", "adjoint", "diagm"})

# Functions the language calls through a builder (with its algebra) rather
# than through `func`; `mean` is sugar and never appears in the graph.
BUILDERS: dict[str, Callable] = {"sum": reduce_sum, "mean": mean, "outer": outer,
                                 "log": log, "exp": exp,
                                 "softmax": softmax, "logsumexp": logsumexp, "diag": diag,
                                 "maximum": maximum, "minimum": minimum, "kron": kron,
                                 "solve": solve}


def function_names() -> list[str]:
    """Every name the language accepts as a function."""
    return sorted((set(OPS) - OPERATORS) | set(BUILDERS) | set(ALIASES))


def rebuild(node: Expr, args: tuple) -> Expr:
    """`node` with new arguments, through the builders (so their algebra applies)."""
    if not isinstance(node, Apply) or args == node.args:
        return node
    builder = {"add": add, "mul": mul, "div": div, "pow": power, "matmul": matmul,
               "transpose": transpose, "outer": outer, "kron": kron, "log": log, "exp": exp,
               "diag": diag, "diagm": diag, "solve": solve, "col": col}.get(node.op)
    if builder is not None:
        return builder(*args)
    if node.op == "sum":
        return reduce_sum(args[0], node.param("axis"))
    if node.op == "logsumexp":
        return logsumexp(args[0], node.param("axis"))
    return apply(OPS[node.op], args, node.params)


def _alike(a: Expr, b: Expr) -> bool:
    """Whether `a` and `b` are one value once every name is seen through."""
    if unnamed(a) is unnamed(b):
        return True
    plain = rewrite([a, b], lambda n, args: args[0] if _is(n, "name") else rebuild(n, args))
    return plain[0] is plain[1]

