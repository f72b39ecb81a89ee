"""The operator table and the node builders.

Each operator is one `Op` entry in `OPS`: its shape rule, its reverse-mode
derivative rule (a vector-Jacobian product, one line per primitive in the
manner of autograd), and its text, LaTeX and NumPy forms. Adding a function to
matcalc is adding one entry here.

The builders (`add`, `mul`, `matmul`, ...) apply the algebra every node obeys
on construction: n-ary sums and products are flattened, scalar constants are
folded into one leading coefficient, like terms are collected, and the
symbolic `zeros`/`ones`/`eye` never survive where they are neutral, so no
derivative rule ever builds a dense zero or identity array (as JAX's `Zero`).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import sympy

from . import precedence as P
from .errors import DomainError, ShapeError
from .expr import Apply, Const, Expr, Var, apply, const, const_power, is_const, rewrite
from .shapes import Shape, broadcast, fmt, require_square


@dataclass(frozen=True)
class Form:
    """How one output language writes an operator.

    `template` is a format string over the printed arguments (`{0}`, `{1}`)
    or a function `(args, params) -> str`; `prec` is the precedence of the
    result and `arg_prec` the least precedence an argument may have before it
    needs parentheses (one number, or one per argument).
    """

    template: str | Callable
    prec: int = P.ATOM
    arg_prec: int | tuple = P.LOWEST

    def arg_precedence(self, i: int) -> int:
        if isinstance(self.arg_prec, tuple):
            return self.arg_prec[min(i, len(self.arg_prec) - 1)]
        return self.arg_prec

    def render(self, args: list[str], params: dict) -> str:
        if callable(self.template):
            return self.template(args, params)
        return self.template.format(*args, **params)


@dataclass(frozen=True)
class Op:
    """One operator: shape rule, derivative rule and its three written forms.

    `vjp(g, node, i)` returns the adjoint contribution to argument `i` of
    `node` given the adjoint `g` of `node`, or None where there is none.
    `params` lists keyword parameters with their defaults; `dims` says the
    positional arguments are dimensions (`ones(N, D)`); `domain` tells the
    numerical check which inputs the function needs ('positive', 'unit' for
    |x| < 1, 'spd'); `helper` is the source of a NumPy function the generated
    module defines when the operator's NumPy form calls it. For the
    derivation shown step by step, `jvp(node, ds)` is the differential of
    `node` given the differentials `ds` of its arguments (None where an
    argument is constant), `rule` names it (product rule, d tr, ...) and
    `identity` names the inner-product identity its reverse rule uses.
    """

    name: str
    shape: Callable[[list, dict], Shape]
    vjp: Callable | None
    text: Form
    latex: Form
    numpy: Form
    nargs: int | None = 1
    params: tuple = ()
    dims: bool = False
    domain: str = ""
    elementwise: bool = False
    helper: str = ""
    jvp: Callable | None = None
    rule: str = ""
    identity: str = ""


OPS: dict[str, Op] = {}
ALIASES = {"tr": "trace"}


def _register(op: Op) -> Op:
    OPS[op.name] = op
    return op


def _is(node: Expr, *names: str) -> bool:
    return isinstance(node, Apply) and node.op in names


def unnamed(node: Expr) -> Expr:
    """The value a named intermediate stands for (the node itself if unnamed)."""
    while _is(node, "name"):
        node = node.args[0]
    return node


def _view(node: Expr, *names: str) -> Apply | None:
    """`node`, or the value a named intermediate stands for, when it applies
    one of the operators `names`; else None. Every stable form matches its
    pattern through `_view`, so naming a value never hides the form."""
    node = unnamed(node)
    return node if _is(node, *names) else None


def _alike(a: Expr, b: Expr) -> bool:
    """Whether `a` and `b` are one value once every name is seen through."""
    if unnamed(a) is unnamed(b):
        return True
    plain = rewrite([a, b], lambda n, args: args[0] if _is(n, "name") else rebuild(n, args))
    return plain[0] is plain[1]


def _kwargs(params: dict) -> str:
    return "".join(f", {k}={v}" for k, v in params.items() if v is not None)


def call(name: str) -> Form:
    """The form `name(arg, ..., key=value)`."""
    return Form(lambda a, p: f"{name}({', '.join(a)}{_kwargs(p)})")


def latex_call(command: str) -> Form:
    """The LaTeX form `\\command\\left(arg\\right)`."""
    return Form(lambda a, p: f"{command}\\left({', '.join(a)}\\right)")


# ---------------------------------------------------------------- builders ---

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


# Longest matrix-product chain read factor by factor (for like terms in any
# grouping, and for symmetry); a longer one is taken as it is grouped, and as
# not symmetric, which is always safe. Reading every chain whole would cost
# O(k²) along a chain of k products.
CHAIN = 64


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


def is_symmetric(x: Expr) -> bool:
    """Whether x = xᵀ follows from its structure (declared symmetric or spd
    variables, identities, inverses, sums and products of symmetric parts,
    A Aᵀ, elementwise functions of symmetric matrices)."""
    if x.ndim < 2:
        return True
    if isinstance(x, Var):
        return bool(x.structure)
    if not isinstance(x, Apply) or x.shape[0] != x.shape[1]:
        return False
    if x.op in ("eye", "ones", "zeros", "diagm"):
        return True
    if x.op == "outer":
        return x.args[0] is x.args[1]
    if x.op in ("matmul", "solve"):
        factors = _chain(x, CHAIN)
        return factors is not None and _palindrome(factors)
    if x.op in ("inv", "transpose", "name", "adjoint", "add", "mul", "div", "pow") or \
            OPS[x.op].elementwise:  # a vector term broadcasts along rows: not symmetric
        return all(a.ndim != 1 and is_symmetric(a) for a in x.args)
    return False




def _chain(x: Expr, limit: int) -> list[tuple[Expr, bool, bool]] | None:
    """x as a product F₁ ⋯ Fₖ of factors (A, transposed, inverted), reading
    (AB)ᵀ as BᵀAᵀ, solve(A, B) as A⁻¹B and inv(A) as A⁻¹; None beyond
    `limit` factors."""
    factors, stack = [], [(x, False, False)]
    while stack:
        if len(factors) + len(stack) > limit:
            return None
        node, flipped, inverted = stack.pop()
        if inverted:
            factors.append((node, flipped, True))
        elif _is(node, "transpose"):
            stack.append((node.args[0], not flipped, False))
        elif _is(node, "inv"):
            stack.append((node.args[0], flipped, True))
        elif _is(node, "matmul", "solve"):
            a, b = node.args
            parts = [(a, flipped, node.op == "solve"), (b, flipped, False)]
            stack.extend(parts if flipped else parts[::-1])  # popped left to right
        else:
            factors.append((node, flipped, False))
    return factors


def _palindrome(factors: list) -> bool:
    """F₁ ⋯ Fₖ is symmetric when F_{k+1-i} = F_iᵀ and the middle factor is
    symmetric (A B Aᵀ with B = Bᵀ; A Aᵀ)."""
    k = len(factors)
    for i in range(k // 2):
        (a, ta, ia), (b, tb, ib) = factors[i], factors[k - 1 - i]
        if a is not b or ia != ib or (ta == tb and not is_symmetric(a)):
            return False
    return k % 2 == 0 or is_symmetric(factors[k // 2][0])


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


# ------------------------------------------------------------ shape rules ---

def _same(s, p):
    return s[0]


def _broadcast(s, p):
    return broadcast(*s)


def _matmul_shape(s, p):
    a, b = s
    inner_a = a[-1]
    inner_b = b[0]
    if inner_a != inner_b:
        raise ShapeError(f"'@' of {fmt(a)} and {fmt(b)}: inner dimensions "
                         f"{inner_a} and {inner_b} differ")
    return a[:-1] + b[1:]


def _transpose_shape(s, p):
    return s[0][::-1]


def _sum_shape(s, p):
    shape, axis = s[0], p.get("axis")
    if axis is None:
        return ()
    if not 0 <= axis < len(shape):
        raise ShapeError(f"axis {axis} is out of range for a {fmt(shape)} array")
    return shape[:axis] + shape[axis + 1:]


def _square_to(name, result):
    def rule(s, p):
        require_square(s[0], name)
        return () if result == "scalar" else s[0]
    return rule


def _vector(s, what):
    if len(s) != 1:
        raise ShapeError(f"{what} needs a vector, got {fmt(s)}")


def _outer_shape(s, p):
    _vector(s[0], "outer")
    _vector(s[1], "outer")
    return (s[0][0], s[1][0])


def _col_shape(s, p):
    _vector(s[0], "[:, None]")
    return (s[0][0], sympy.Integer(1))


def _row_shape(s, p):
    _vector(s[0], "[None, :]")
    return (sympy.Integer(1), s[0][0])


def _given_shape(s, p):
    return p["shape"]


# ------------------------------------------------------- derivative rules ---

def _matmul_vjp(g, node, i):
    a, b = node.args
    if i == 0:
        if a.ndim == 2:
            return matmul(g, transpose(b)) if b.ndim == 2 else outer(g, b)
        return matmul(b, g) if b.ndim == 2 else mul(g, b)
    if b.ndim == 2:
        return matmul(transpose(a), g) if a.ndim == 2 else outer(a, g)
    return matmul(transpose(a), g) if a.ndim == 2 else mul(g, a)


def _sum_vjp(g, node, i):
    x = node.args[0]
    if node.param("axis") == 1:
        g = col(g)
    return mul(ones(x.shape), g)


def _mul_vjp(g, node, i):
    if len(node.args) > LONG:
        before, after = _partial_products(node.args)
        return unbroadcast(mul(g, before[i], after[i]), node.args[i].shape)
    others = node.args[:i] + node.args[i + 1:]
    return unbroadcast(mul(g, *others), node.args[i].shape)


def _mul_jvp(node, d):
    """Product rule: d(a₁ ⋯ aₖ) = Σᵢ (a₁ ⋯ aᵢ₋₁) daᵢ (aᵢ₊₁ ⋯ aₖ)."""
    args = node.args
    if len(args) <= LONG:
        return add(*(mul(di, *args[:i], *args[i + 1:]) for i, di in enumerate(d)
                     if di is not None))
    before, after = _partial_products(args)
    return add(*(mul(before[i], di, after[i]) for i, di in enumerate(d) if di is not None))


@functools.lru_cache(maxsize=64)
def _partial_products(args: tuple) -> tuple[list, list]:
    """(a₁ ⋯ aᵢ₋₁ and aᵢ₊₁ ⋯ aₖ for each i) of a long product, each built
    from the next shorter one and kept whole: the k partial products of a
    product of k factors take O(k) nodes rather than O(k²)."""
    def whole(product: Expr) -> Expr:
        return shared_adjoint(product) if _is(product, "mul") else product
    before, after = [const(1)], [const(1)]
    for a, b in zip(args[:-1], reversed(args[1:])):
        before.append(whole(mul(before[-1], a)))
        after.append(whole(mul(b, after[-1])))
    return before, after[::-1]


def _pow_vjp(g, node, i):
    x, e = node.args
    if i == 0:
        return unbroadcast(mul(g, e, power(x, sub(e, const(1)))), x.shape)
    return unbroadcast(mul(g, node, log(x)), e.shape)


def _div_vjp(g, node, i):
    a, b = node.args
    if i == 0:
        return unbroadcast(div(g, b), a.shape)
    return unbroadcast(neg(div(mul(g, node), b)), b.shape)


def _given(terms) -> list:
    return [t for t in terms if t is not None]


def _or0(d, like: Expr) -> Expr:
    return zeros(like.shape) if d is None else d


# ------------------------------------------------------------------ table ---

def _infix(symbol: str, prec: int, right_assoc: bool = False) -> Form:
    args = (prec + 1, prec) if right_assoc else (prec, prec + 1)
    return Form("{0}" + symbol + "{1}", prec, args)


_register(Op("add", _broadcast, lambda g, n, i: unbroadcast(g, n.args[i].shape),
             text=Form(" + ", P.ADD), latex=Form(" + ", P.ADD),
             numpy=Form(" + ", P.ADD), nargs=None,
             jvp=lambda n, d: add(*_given(d)),
             rule='sum rule', identity="a broadcast term's adjoint sums the broadcast axes"))
_register(Op("mul", _broadcast, _mul_vjp,
             text=Form(" * ", P.MUL), latex=Form(r" \odot ", P.MUL),
             numpy=Form(" * ", P.MUL), nargs=None,
             jvp=_mul_jvp,
             rule='product rule', identity='<A, B ⊙ C> = <A ⊙ C, B>'))
_register(Op("div", _broadcast, _div_vjp,
             text=_infix(" / ", P.MUL), latex=Form(r"\frac{{{0}}}{{{1}}}"),
             numpy=_infix(" / ", P.MUL), nargs=2,
             jvp=lambda n, d: div(sub(_or0(d[0], n), mul(n, _or0(d[1], n))), n.args[1]),
             rule='quotient rule', identity='<A, B / C> = <A / C, B>'))
_register(Op("pow", _broadcast, _pow_vjp,
             text=_infix(" ** ", P.POW, True),
             latex=Form("{0}^{{{1}}}", P.POW, (P.ATOM, P.LOWEST)),
             numpy=_infix(" ** ", P.POW, True), nargs=2,
             jvp=lambda n, d: add(*_given((mul(n.args[1], power(n.args[0], sub(n.args[1], const(1))), d[0]) if d[0] is not None else None, mul(n, log(n.args[0]), d[1]) if d[1] is not None else None))),
             rule='power rule', identity='<A, c ⊙ B> = <c ⊙ A, B>'))
# Products of matrices are parenthesised against elementwise products (both
# bind as tightly in Python), so `(A @ B) * C` never reads as `A @ (B * C)`.
_register(Op("matmul", _matmul_shape, _matmul_vjp,
             text=Form("{0} @ {1}", P.MUL, P.MUL + 1),
             latex=Form("{0} {1}", P.MUL, P.MUL + 1),
             numpy=Form("{0} @ {1}", P.MUL, P.MUL + 1), nargs=2,
             jvp=lambda n, d: add(*_given((matmul(d[0], n.args[1]) if d[0] is not None else None, matmul(n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='trace cyclicity: <A, BC> = <A Cᵀ, B> = <Bᵀ A, C>'))
_register(Op("transpose", _transpose_shape, lambda g, n, i: transpose(g),
             text=Form("{0}.T", P.POSTFIX, P.POSTFIX),
             latex=Form(r"{0}^\top", P.POSTFIX, P.ATOM),
             numpy=Form("{0}.T", P.POSTFIX, P.POSTFIX),
             jvp=lambda n, d: transpose(d[0]),
             rule='d(Xᵀ) = (dX)ᵀ', identity='transpose of a trace: <A, Bᵀ> = <Aᵀ, B>'))
# A user's named intermediate: the identity, kept as a node so the builders'
# algebra never dissolves it (Y = A @ W + b stays Y inside Y - T).
_register(Op("name", _same, lambda g, n, i: g,
             text=Form(lambda a, p: p["name"]), latex=Form(lambda a, p: p["name"]),
             numpy=Form(lambda a, p: p["name"]),
             jvp=lambda n, d: d[0],
             rule='', identity=''))
# The adjoint of a node that feeds several rules: the identity, kept as a node
# so the products built from it share it (dz3 in dw3 = dz3 a2 and db3 = dz3)
# instead of each flattening its factors.
_register(Op("adjoint", _same, lambda g, n, i: g, text=Form("{0}", P.LOWEST),
             latex=Form("{0}", P.LOWEST), numpy=Form("{0}", P.LOWEST),
             jvp=lambda n, d: d[0],
             rule='', identity=''))
_register(Op("col", _col_shape, lambda g, n, i: reduce_sum(g, 1),
             text=Form("{0}[:, None]", P.POSTFIX, P.POSTFIX),
             latex=Form("{0}", P.MUL, P.MUL),
             numpy=Form("{0}[:, None]", P.POSTFIX, P.POSTFIX),
             jvp=lambda n, d: col(d[0]),
             rule='', identity='<A, v 1ᵀ> = <A 1, v>'))
_register(Op("row", _row_shape, lambda g, n, i: reduce_sum(g, 0),
             text=Form("{0}[None, :]", P.POSTFIX, P.POSTFIX),
             latex=Form(r"{0}^\top", P.POSTFIX, P.ATOM),
             numpy=Form("{0}[None, :]", P.POSTFIX, P.POSTFIX),
             jvp=lambda n, d: row(d[0]),
             rule='', identity='<A, 1 vᵀ> = <1ᵀ A, v>'))


def _latex_sum(a, p):
    axis = p.get("axis")
    if axis == 0:
        return rf"\mathbf{{1}}^\top {a[0]}"
    if axis == 1:
        return rf"{a[0]} \mathbf{{1}}"
    return rf"\operatorname{{sum}}\left({a[0]}\right)"


# The array method: `x.sum(axis=0)` costs a microsecond less than np.sum.
_register(Op("sum", _sum_shape, _sum_vjp, text=call("sum"),
             latex=Form(_latex_sum, P.MUL, P.MUL + 1),
             numpy=Form(lambda a, p: f"{a[0]}.sum({_kwargs(p)[2:]})", P.POSTFIX, P.POSTFIX),
             params=(("axis", None),),
             jvp=lambda n, d: reduce_sum(d[0], n.param("axis")),
             rule='d sum(X) = sum(dX)', identity='<a, sum(B)> = <a 1ᵀ, B>'))
_register(Op("outer", _outer_shape,
             lambda g, n, i: matmul(g, n.args[1]) if i == 0 else matmul(transpose(g), n.args[0]),
             text=call("outer"), latex=Form(r"{0} {1}^\top", P.MUL, P.POSTFIX),
             numpy=call("np.outer"), nargs=2,
             jvp=lambda n, d: add(*_given((outer(d[0], n.args[1]) if d[0] is not None else None, outer(n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='<A, x yᵀ> = <A y, x> = <Aᵀ x, y>'))


def _dims_form(name: str) -> Form:
    return Form(lambda a, p: f"{name}({', '.join(map(str, p['shape']))})")


def _numpy_dims(name: str) -> Form:
    """np.ones((N, D), dtype): in the inputs' precision (float32 stays float32)."""
    return Form(lambda a, p: f"np.{name}(({', '.join(map(str, p['shape']))}"
                + ("," if len(p["shape"]) == 1 else "") + "), dtype)")


def _latex_dims(symbol: str) -> Form:
    return Form(lambda a, p: rf"{symbol}_{{{' '.join(str(d) for d in p['shape'])}}}"
                if len(p["shape"]) == 1 else
                rf"{symbol}_{{{p['shape'][0]} \times {p['shape'][1]}}}")


_register(Op("zeros", _given_shape, None, text=_dims_form("zeros"),
             latex=_latex_dims(r"\mathbf{0}"), numpy=_numpy_dims("zeros"),
             nargs=0, dims=True))
_register(Op("ones", _given_shape, None, text=_dims_form("ones"),
             latex=_latex_dims(r"\mathbf{1}"), numpy=_numpy_dims("ones"),
             nargs=0, dims=True))
_register(Op("eye", _given_shape, None,
             text=Form(lambda a, p: f"eye({p['shape'][0]})"),
             latex=Form(lambda a, p: rf"I_{{{p['shape'][0]}}}"),
             numpy=Form(lambda a, p: f"np.eye({p['shape'][0]}, dtype=dtype)"),
             nargs=0, dims=True))
_register(Op("trace", _square_to("trace", "scalar"),
             lambda g, n, i: mul(g, eye(n.args[0].shape[0])),
             text=call("trace"), latex=latex_call(r"\operatorname{tr}"),
             numpy=call("np.trace"),
             jvp=lambda n, d: func("trace", d[0]),
             rule='d tr(X) = tr(dX)', identity='<a, tr(B)> = <a I, B>'))
_register(Op("det", _square_to("det", "scalar"),
             lambda g, n, i: mul(g, n, transpose(func("inv", n.args[0]))),
             text=call("det"), latex=latex_call(r"\det"),
             numpy=call("np.linalg.det"), domain="spd",
             jvp=lambda n, d: mul(n, func("trace", matmul(func("inv", n.args[0]), d[0]))),
             rule='d det(X) = det(X) tr(X⁻¹ dX)', identity='<a, tr(X⁻¹ dX)> = <a X⁻ᵀ, dX>'))
_register(Op("logdet", _square_to("logdet", "scalar"),
             lambda g, n, i: mul(g, transpose(func("inv", n.args[0]))),
             text=call("logdet"), latex=latex_call(r"\log\det"),
             numpy=Form("np.linalg.slogdet({0})[1]"), domain="spd",
             jvp=lambda n, d: func("trace", matmul(func("inv", n.args[0]), d[0])),
             rule='d log det(X) = tr(X⁻¹ dX)', identity='<a, tr(X⁻¹ dX)> = <a X⁻ᵀ, dX>'))
_register(Op("inv", _square_to("inv", "matrix"),
             lambda g, n, i: neg(matmul(matmul(transpose(n), g), transpose(n))),
             text=call("inv"), latex=Form("{0}^{{-1}}", P.POSTFIX, P.ATOM),
             numpy=call("np.linalg.inv"), domain="spd",
             jvp=lambda n, d: neg(matmul(matmul(n, d[0]), n)),
             rule='d X⁻¹ = −X⁻¹ dX X⁻¹', identity='trace cyclicity: <A, −Y dX Y> = <−Yᵀ A Yᵀ, dX>'))


def elementwise(name: str, vjp: Callable, latex: str | Form, numpy: str | Form,
                domain: str = "", helper: str = "") -> Op:
    """Register an elementwise function; `vjp(g, x, y)` with y = f(x).

    `latex` and `numpy` are a command or function name (written as a call)
    or a template over the argument `{0}`; `helper` is the source of a NumPy
    function the generated module defines for it.
    """
    rule = lambda g, n, i: vjp(g, n.args[0], n)  # noqa: E731
    if isinstance(numpy, str):
        numpy = Form(numpy) if "{0}" in numpy else call(numpy)
    if isinstance(latex, str):
        latex = Form(latex) if "{0}" in latex else latex_call(latex)
    return _register(Op(name, _same, rule, text=call(name), latex=latex,
                        numpy=numpy, domain=domain, elementwise=True, helper=helper,
                        jvp=lambda n, d: vjp(d[0], n.args[0], n),
                        rule=f"chain rule for the elementwise {name}",
                        identity="<A, f'(X) ⊙ dX> = <f'(X) ⊙ A, dX>"))


def _flat(g, x, y):
    """Piecewise constant: the derivative is 0 (no contribution)."""
    return None


elementwise("exp", lambda g, x, y: mul(g, y), r"\exp", "np.exp")
elementwise("log", lambda g, x, y: div(g, x), r"\log", "np.log", "positive")
elementwise("sqrt", lambda g, x, y: div(g, mul(const(2), y)), r"\sqrt{{{0}}}",
            "np.sqrt", "positive")
elementwise("abs", lambda g, x, y: mul(g, func("sign", x)), r"\left|{0}\right|", "np.abs")
elementwise("sign", _flat, r"\operatorname{sign}", "np.sign")
elementwise("sin", lambda g, x, y: mul(g, func("cos", x)), r"\sin", "np.sin")
elementwise("cos", lambda g, x, y: neg(mul(g, func("sin", x))), r"\cos", "np.cos")
elementwise("tanh", lambda g, x, y: mul(g, sub(const(1), power(y, const(2)))),
            r"\tanh", "np.tanh")
elementwise("sigmoid", lambda g, x, y: mul(g, y, sub(const(1), y)), r"\sigma",
            "_sigmoid", helper='''
def _sigmoid(x):
    """σ(x) = 1 / (1 + e^-x), the exponent capped where σ falls below the
    smallest normal number (x < -709 in float64, -88 in float32): never an
    overflow, every normal value to full precision, one exp pass."""
    x = np.asarray(x)
    cap = {np.float32: 88.0, np.float16: 11.0}.get(x.dtype.type, 709.0)
    return 1 / (1 + np.exp(np.minimum(-x, cap)))
''')
elementwise("relu", lambda g, x, y: mul(g, func("step", x)),
            r"\operatorname{relu}", "np.maximum({0}, 0)")
elementwise("step", _flat, r"\mathbf{{1}}\left[{0} > 0\right]", "np.sign(np.maximum({0}, 0))")
elementwise("softplus", lambda g, x, y: mul(g, func("sigmoid", x)),
            r"\operatorname{softplus}", "np.logaddexp(0, {0})")
elementwise("log1p", lambda g, x, y: div(g, add(const(1), x)),
            r"\log\left(1 + {0}\right)", "np.log1p", "positive")

elementwise("tan", lambda g, x, y: mul(g, add(const(1), power(y, const(2)))),
            r"\tan", "np.tan")
elementwise("arcsin", lambda g, x, y: div(g, func("sqrt", sub(const(1), power(x, const(2))))),
            r"\arcsin", "np.arcsin", "unit")
elementwise("arccos",
            lambda g, x, y: neg(div(g, func("sqrt", sub(const(1), power(x, const(2)))))),
            r"\arccos", "np.arccos", "unit")
elementwise("arctan", lambda g, x, y: div(g, add(const(1), power(x, const(2)))),
            r"\arctan", "np.arctan")
elementwise("sinh", lambda g, x, y: mul(g, func("cosh", x)), r"\sinh", "np.sinh")
elementwise("cosh", lambda g, x, y: mul(g, func("sinh", x)), r"\cosh", "np.cosh")
elementwise("expm1", lambda g, x, y: mul(g, add(const(1), y)),
            Form(r"\left(e^{{{0}}} - 1\right)"), "np.expm1")
elementwise("square", lambda g, x, y: mul(const(2), g, x),
            Form(r"{0}^{{\circ 2}}", P.POW, P.ATOM), "np.square")


def _share(mine: Expr, other: Expr, sign: int) -> Expr:
    """The part of the derivative of max (sign 1) or min (sign -1) that goes
    to `mine`: 1 where it is strictly the extremum, 1/2 at a tie, else 0,
    that is (1 + sign(±(mine − other))) / 2."""
    diff = sub(mine, other) if sign > 0 else sub(other, mine)
    if is_zero(diff):
        return const(sympy.Rational(1, 2))
    return div(add(const(1), func("sign", diff)), const(2))


def _extremum(name: str, sign: int) -> Op:
    """max (sign 1) or min (sign -1) of two arrays. At a tie the derivative
    is split evenly between the arguments (as JAX and TensorFlow do), so a
    tie of arguments with equal derivatives has that derivative:
    maximum(x, x) has derivative 1, and a clipped r with r inside the clip
    range has r's. (relu keeps its own rule, step(x): 0 at the kink.)"""
    def rule(g, n, i):
        mine, other = n.args[i], n.args[1 - i]
        return unbroadcast(mul(g, _share(mine, other, sign)), mine.shape)
    def jvp(n, d):
        a, b = n.args
        return add(*_given(mul(_share(x, y, sign), dx)
                           for x, y, dx in ((a, b, d[0]), (b, a, d[1])) if dx is not None))
    return _register(Op(name, _broadcast, rule, text=call(name),
                        latex=latex_call(r"\max" if sign > 0 else r"\min"),
                        numpy=call("np." + name), nargs=2, jvp=jvp,
                        rule=f"d {name}(A, B) = s_A ⊙ dA + s_B ⊙ dB with s_A = "
                             f"(1 + sign({'A − B' if sign > 0 else 'B − A'}))/2 "
                             f"(1 where A wins, 1/2 at a tie)",
                        identity="<G, s_A ⊙ dA> = <s_A ⊙ G, dA>"))


_extremum("maximum", 1)
_extremum("minimum", -1)


def _axis_form(name: str) -> Form:
    r"""`\operatorname{name}_{axis}(x)`."""
    return Form(lambda a, p: rf"\operatorname{{{name}}}"
                + ("" if p.get("axis") is None else f"_{{{p['axis']}}}")
                + rf"\left({a[0]}\right)")


def _softmax_shape(s, p):
    _sum_shape(s, p)
    return s[0]


_register(Op("softmax", _softmax_shape,
             lambda g, n, i: mul(n, sub(g, expand(reduce_sum(mul(g, n), n.param("axis")),
                                                  n.param("axis")))),
             text=call("softmax"), latex=_axis_form("softmax"),
             numpy=Form(lambda a, p: f"_softmax({a[0]}, {p['axis']})"),
             params=(("axis", None),), helper='''
def _softmax(x, axis):
    """exp(x) / sum(exp(x), axis), shifted by the max for stability."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
''',
             jvp=lambda n, d: mul(n, sub(d[0], expand(reduce_sum(mul(n, d[0]), n.param("axis")), n.param("axis")))),
             rule='d softmax(x) = y ⊙ (dx − sum(y ⊙ dx))', identity='<A, y ⊙ (dx − sum(y ⊙ dx))> = <y ⊙ (A − sum(A ⊙ y)), dx>'))
_register(Op("logsumexp", _sum_shape,
             lambda g, n, i: mul(expand(g, n.param("axis")),
                                 exp(sub(n.args[0], expand(n, n.param("axis"))))),
             text=call("logsumexp"), latex=_axis_form("logsumexp"),
             numpy=Form(lambda a, p: f"_logsumexp({a[0]}, {p['axis']})"),
             params=(("axis", None),), helper='''
def _logsumexp(x, axis):
    """log(sum(exp(x), axis)), shifted by the max for stability."""
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))
''',
             jvp=lambda n, d: reduce_sum(mul(exp(sub(n.args[0], expand(n, n.param("axis")))), d[0]), n.param("axis")),
             rule='d logsumexp(x) = sum(softmax(x) ⊙ dx)', identity='<a, sum(s ⊙ dx)> = <a s, dx>'))


def _solve_shape(s, p):
    require_square(s[0], "solve")
    if not s[1] or s[1][0] != s[0][0]:
        raise ShapeError(f"solve(A, B) needs B with {s[0][0]} rows, got {fmt(s[1])}")
    return s[1]


def solve(a: Expr, b: Expr) -> Expr:
    """A⁻¹ B without the inverse; A⁻¹(cI) = c A⁻¹ and A⁻¹(cB) = c A⁻¹B."""
    scale, rest = _scaled_identity(b)
    if rest is None:
        return mul(scale, func("inv", a))
    scale, rest = _coefficient(b)
    if scale != 1 and rest is not None:
        return mul(const(scale), func("solve", a, rest))
    return func("solve", a, b)


def _solve_vjp(g, node, i):
    a = node.args[0]
    gb = solve(transpose(a), g)
    if i == 1:
        return gb
    return neg(matmul(gb, transpose(node)) if node.ndim == 2 else outer(gb, node))


_register(Op("solve", _solve_shape, _solve_vjp, text=call("solve"),
             latex=Form("{0}^{{-1}} {1}", P.MUL, (P.ATOM, P.MUL + 1)),
             numpy=call("np.linalg.solve"), nargs=2, domain="spd",
             jvp=lambda n, d: solve(n.args[0], sub(_or0(d[1], n), matmul(d[0], n) if d[0] is not None else zeros(n.shape))),
             rule='d(A⁻¹B) = A⁻¹(dB − dA A⁻¹B)', identity='<G, A⁻¹ dB> = <A⁻ᵀ G, dB>'))


def _diag_shape(s, p):
    require_square(s[0], "diag")
    return (s[0][0],)


def _diagm_shape(s, p):
    _vector(s[0], "diag")
    return (s[0][0], s[0][0])


_register(Op("diag", _diag_shape, lambda g, n, i: diag(g), text=call("diag"),
             latex=latex_call(r"\operatorname{diag}"), numpy=call("np.diag"),
             jvp=lambda n, d: diag(d[0]),
             rule='d diag(X) = diag(dX)', identity='<a, diag(B)> = <diag(a), B>'))
_register(Op("diagm", _diagm_shape, lambda g, n, i: diag(g), text=call("diag"),
             latex=latex_call(r"\operatorname{diag}"), numpy=call("np.diag"),
             jvp=lambda n, d: diag(d[0]),
             rule='d diag(x) = diag(dx)', identity='<A, diag(b)> = <diag(A), b>'))


def _scalar(s, p):
    return ()


_register(Op("norm", _scalar, lambda g, n, i: mul(g, div(n.args[0], n)), text=call("norm"),
             latex=Form(r"\left\|{0}\right\|"), numpy=call("np.linalg.norm"),
             jvp=lambda n, d: div(reduce_sum(mul(n.args[0], d[0])), n),
             rule='d‖x‖ = <x, dx> / ‖x‖', identity='<a, <x, dx>/‖x‖> = <a x / ‖x‖, dx>'))
_register(Op("norm1", _scalar, lambda g, n, i: mul(g, func("sign", n.args[0])),
             text=call("norm1"), latex=Form(r"\left\|{0}\right\|_1"),
             numpy=Form("np.abs({0}).sum()"),
             jvp=lambda n, d: reduce_sum(mul(func("sign", n.args[0]), d[0])),
             rule='d‖x‖₁ = <sign(x), dx>', identity='<a, <s, dx>> = <a s, dx>'))


def _kron_shape(s, p):
    a, b = s
    if len(a) != 2 or len(b) != 2:
        raise ShapeError(f"kron needs two matrices, got {fmt(a)} and {fmt(b)}")
    return (a[0] * b[0], a[1] * b[1])


def _unkron_shape(s, p):
    g, other = s
    if len(g) != 2 or len(other) != 2:
        raise ShapeError(f"unkron needs two matrices, got {fmt(g)} and {fmt(other)}")
    out = tuple(sympy.cancel(a / b) for a, b in zip(g, other))
    if any(sympy.fraction(d)[1] != 1 or not d.is_positive for d in out):
        raise ShapeError(f"unkron of {fmt(g)} by {fmt(other)}: the sizes are not multiples")
    return out


_register(Op("kron", _kron_shape,
             lambda g, n, i: (unkron_left if i == 0 else unkron_right)(g, n.args[1 - i]),
             text=call("kron"), latex=Form(r"{0} \otimes {1}", P.MUL, P.MUL + 1),
             numpy=call("np.kron"), nargs=2,
             jvp=lambda n, d: add(*_given((kron(d[0], n.args[1]) if d[0] is not None else None, kron(n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='<G, A ⊗ B> = <unkron(G, B), A>'))
# The adjoints of kron(A, B) = [A_ij B]: unkron_left(G, B)_ij = <G_ij block, B>
# and unkron_right(G, A) = sum_ij A_ij (G_ij block).
_register(Op("unkron_left", _unkron_shape,
             lambda g, n, i: kron(g, n.args[1]) if i == 0 else
             unkron_right(n.args[0], g), text=call("unkron_left"),
             latex=latex_call(r"\operatorname{unkron}_{L}"),
             numpy=call("_unkron_left"), nargs=2, helper='''
def _unkron_left(g, b):
    """The adjoint of kron(a, b) for a: each block of g against b."""
    p, q = b.shape
    return np.einsum("ikjl,kl->ij", g.reshape(g.shape[0] // p, p, g.shape[1] // q, q), b)
''',
             jvp=lambda n, d: add(*_given((func("unkron_left", d[0], n.args[1]) if d[0] is not None else None, func("unkron_left", n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='<A, unkron(G, B)> = <A ⊗ B, G>'))
_register(Op("unkron_right", _unkron_shape,
             lambda g, n, i: kron(n.args[1], g) if i == 0 else
             unkron_left(n.args[0], g), text=call("unkron_right"),
             latex=latex_call(r"\operatorname{unkron}_{R}"),
             numpy=call("_unkron_right"), nargs=2, helper='''
def _unkron_right(g, a):
    """The adjoint of kron(a, b) for b: the blocks of g weighted by a."""
    m, n = a.shape
    return np.einsum("ikjl,ij->kl", g.reshape(m, g.shape[0] // m, n, g.shape[1] // n), a)
''',
             jvp=lambda n, d: add(*_given((func("unkron_right", d[0], n.args[1]) if d[0] is not None else None, func("unkron_right", n.args[0], d[1]) if d[1] is not None else None))),
             rule='product rule', identity='<B, unkron_r(G, A)> = <A ⊗ B, G>'))

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
