"""The node builders: `add`, `mul`, `matmul`, ... build the graph.

The builders apply the algebra every node obeys on construction: n-ary sums
and products are flattened, scalar constants are folded into one leading
coefficient, like terms are collected (x ⊙ x² = x³, (a / b) ⊙ b = a), and the
symbolic `zeros`/`ones`/`eye` never survive where they are neutral, so no
derivative rule ever builds a dense zero or identity array (as JAX's `Zero`).
Every other identity (stable forms, cheaper products) is a named rule of
`matcalc.ops.identities`, tried through `rulebook.first` before a node is built.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import sympy

from ..errors import DomainError, ShapeError
from ..ir.expr import Apply, Const, Expr, Var, apply, const, const_power, is_const, is_op
from ..ir.shapes import Shape, broadcast, fmt
from . import rulebook
from .core import ALIASES, OPS, _broadcast_vector  # noqa: F401  (the rules import it here)
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
    return is_const(node, 0) or is_op(node, "zeros")


def _coefficient(node: Expr) -> tuple[sympy.Expr, Expr | None]:
    """Split `c * rest` into (c, rest); rest is None for a constant."""
    if isinstance(node, Const):
        return node.value, None
    if is_op(node, "mul") and isinstance(node.args[0], Const):
        rest = node.args[1:]
        return node.args[0].value, rest[0] if len(rest) == 1 else apply(OPS["mul"], rest)
    return sympy.Integer(1), node


def term_key(x: Expr):
    """What makes two terms alike: the factors of a product in any order, the
    matrices of a product chain in any grouping, the two vectors of a dot
    product in either order (a @ b = b @ a), a chain and its transpose
    written as the chain of transposes ((A B)ᵀ = Bᵀ Aᵀ)."""
    if is_op(x, "mul"):
        return frozenset(Counter(x.args).items())
    if is_op(x, "transpose") and is_op(x.args[0], "matmul"):
        chain = _chain_of(x.args[0])
        return x if chain is None else ("@", tuple(transpose(m) for m in reversed(chain)))
    if is_op(x, "matmul"):
        chain = _chain_of(x)
        if chain is None:
            return x                                       # a long chain is its own key
        return ("@", frozenset(chain) if len(chain) == 2 and not x.shape else tuple(chain))
    return x


def _chain_of(x: Expr) -> list[Expr] | None:
    """The factors of a product chain in any grouping, None past CHAIN."""
    chain, stack = [], [x]
    while stack:
        if len(chain) + len(stack) > CHAIN:
            return None
        node = stack.pop()
        if is_op(node, "matmul"):
            stack.extend(reversed(node.args))
        else:
            chain.append(node)
    return chain


def add(*terms: Expr) -> Expr:
    """Elementwise sum with broadcasting; collects like terms (x + 2x = 3x)."""
    shape = broadcast(*(t.shape for t in terms))
    flat: list[Expr] = []
    for t in terms:  # the sum broadcasts its terms: no term needs `ones` for it
        for a in (t.args if is_op(t, "add") else (t,)):
            a = _without_ones(a)                           # 1 (x + y) is itself a sum
            flat.extend(a.args if is_op(a, "add") else (a,))
    constant = sympy.Integer(0)
    coeffs: dict[Expr, sympy.Expr] = {}
    seen: dict[object, Expr] = {}    # like terms: x ⊙ y and y ⊙ x are one term
    for t in flat:
        if is_zero(t):
            continue
        c, rest = _coefficient(t)
        if rest is None:
            constant += c
        else:
            key = term_key(rest)
            rest = seen.setdefault(key, rest)
            coeffs[rest] = coeffs.get(rest, 0) + c
    out = [const(constant)] if constant != 0 else []
    out += [mul(const(c), rest) for rest, c in coeffs.items() if c != 0]
    if not out:
        return zeros(shape)
    node = out[0] if len(out) == 1 else rulebook.first("add", *out)
    if node is None:
        node = apply(OPS["add"], tuple(out))
    if node.shape != shape:                        # a dropped ones or zeros term broadcast it
        node = mul(ones(shape), node)
    return node


def _without_ones(t: Expr) -> Expr:
    """A term of a sum without its broadcast `ones` factor (c 1 is c)."""
    if is_op(t, "ones"):
        return const(1)
    if is_op(t, "mul") and any(is_op(a, "ones") for a in t.args):
        return mul(*(a for a in t.args if not is_op(a, "ones")))
    return t


# Longest product whose factors a product it joins takes over (flattening a
# longer one into every product built from it costs O(k²) along a chain).
FLAT = 32


def mul(*factors: Expr) -> Expr:
    """Elementwise product with broadcasting; one leading scalar coefficient."""
    shape = broadcast(*(f.shape for f in factors))
    flat: list[Expr] = []
    for f in factors:  # a product longer than FLAT stays one factor: chains grow by nesting
        flat.extend(f.args if is_op(f, "mul") and len(f.args) <= FLAT else (f,))
    for k, f in enumerate(flat):  # (a / b) * b = a
        if is_op(f, "div") and f.args[1] in flat and \
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
    c = c.xreplace(_UNIT_FLOATS)  # 2 * 0.5 * N is N, no coefficient 1.0 * N
    kept = [f for f in rest if not is_op(f, "ones")]
    if c == -1 and len(kept) == 1 and is_op(kept[0], "add") and kept[0].shape == shape and \
            all(_coefficient(t)[0].could_extract_minus_sign() for t in kept[0].args):
        return add(*(mul(const(-1), t) for t in kept[0].args))  # -(-a - b) = a + b
    if broadcast((), *(f.shape for f in kept)) != shape:
        kept.insert(0, ones(shape))
    if c != 1 or not kept:
        kept.insert(0, const(c))
    if len(kept) == 1:
        return kept[0]
    identity = rulebook.first("mul", *kept)
    return identity if identity is not None else apply(OPS["mul"], tuple(kept))


_UNIT_FLOATS = {sympy.Float(1): sympy.Integer(1), sympy.Float(-1): sympy.Integer(-1)}


def _powers(factors: list[Expr]) -> list[Expr]:
    """x * x ** 2 = x ** 3 and x * x ** y = x ** (y + 1): equal bases
    combined, their exponents added (constant exponents, or one exponent
    and the base itself: x ** y * x ** (1 − y) is NaN at x < 0 in NumPy,
    so it stays)."""
    exponents: dict[Expr, list[Expr]] = {}
    for f in factors:
        if not isinstance(f, Const):
            base, e = (f.args[0], f.args[1]) if is_op(f, "pow") else (f, const(1))
            exponents.setdefault(base, []).append(e)
    merged = {b: e for b, e in exponents.items()
              if len(e) > 1 and sum(not isinstance(x, Const) for x in e) <= 1
              and (all(isinstance(x, Const) for x in e) or len(e) == 2)}
    if not merged:
        return factors
    out, placed = [], set()
    for f in factors:  # each merged power where its base first stands
        base = f if isinstance(f, Const) else f.args[0] if is_op(f, "pow") else f
        if isinstance(f, Const) or base not in merged:
            out.append(f)
        elif base not in placed:
            placed.add(base)
            out.append(power(base, add(*merged[base])))
    return out


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
    if is_op(rest, "ones") and b.shape == shape:
        a = const(c)                                       # (c 1) / b = c / b
    elif is_op(a, "mul") and b.shape == shape and all(     # (s 1) / b = s / b
            is_op(f, "ones") or not f.shape for f in a.args) and any(f.shape for f in a.args):
        a = mul(*(f for f in a.args if not f.shape))
    return _built("div", a, b)


# The largest integral float exponent written as an integer (x ** 2.0 is
# x ** 2; x ** 1e20 stays a float: torch and JAX take no 21-digit integer).
SMALL_POWER = 2 ** 31


def power(x: Expr, e: Expr) -> Expr:
    """Elementwise power `x ** e`."""
    if isinstance(e, Const) and e.value.is_Float and float(e.value).is_integer() \
            and abs(e.value) <= SMALL_POWER:
        e = const(sympy.Integer(int(e.value)))             # x ** 2.0 is x ** 2
    if isinstance(e, Const):
        if is_zero(x) and e.value.is_negative:
            raise DomainError("division by zero: the constant 0 to a negative power")
        if e.value == 1:
            return x
        if e.value == 0:
            return ones(x.shape)
        if isinstance(x, Const):
            return const_power(x.value, e.value)
    identity = rulebook.first("pow", x, e)
    return identity if identity is not None else apply(OPS["pow"], (x, e))


# The product of stacks of matrices, an einsum (registered by `ops.einsum`).
BATCHED: dict[str, Callable] = {}


def matmul(a: Expr, b: Expr) -> Expr:
    """NumPy's `a @ b` for vectors and matrices (stacks of them: `BATCHED`)."""
    if not a.shape or not b.shape:
        raise ShapeError("'@' needs vectors or matrices, not scalars; use '*'")
    if a.ndim > 2 or b.ndim > 2:
        return BATCHED["matmul"](a, b)
    shape = _matmul_shape([a.shape, b.shape], {})
    if (identity := rulebook.first("matmul", a, b)) is not None:
        return identity
    if is_zero(a) or is_zero(b):
        return zeros(shape)
    return apply(OPS["matmul"], (a, b))


def symmetric_part(g: Expr) -> Expr:
    """(G + Gᵀ) / 2, the gradient by a symmetric matrix: the symmetric G
    with dL = tr(G dS) for every symmetric dS."""
    return g if is_symmetric(g) else mul(const(sympy.Rational(1, 2)), add(transpose(g), g))


def transpose(x: Expr) -> Expr:
    """`x.T`: a no-op on scalars and vectors; every axis reversed for
    three or more (the `permute` builder)."""
    if x.ndim < 2:
        return x
    if x.ndim > 2:
        return _SYMBOL_BUILDERS["permute"](x, None)
    if (identity := rulebook.first("transpose", x)) is not None:
        return identity
    if is_op(x, "zeros", "ones"):
        return apply(OPS[x.op], (), (("shape", x.shape[::-1]),))
    return apply(OPS["transpose"], (x,))


def diag(x: Expr) -> Expr:
    """NumPy's diag: a vector's diagonal matrix, or a square matrix's diagonal."""
    if x.ndim in (1, 2):
        return _built("diagm" if x.ndim == 1 else "diag", x)
    raise ShapeError("diag needs a vector or a square matrix, got "
                     + ("a scalar" if not x.shape else fmt(x.shape)))


def log(x: Expr) -> Expr:
    """log, in its stable forms (the rules of `stable_forms` for "log")."""
    return _built("log", x)


def exp(x: Expr) -> Expr:
    """exp (exp(log z) = z and softmax are rules of `stable_forms`)."""
    return _built("exp", x)


def maximum(a: Expr, b: Expr) -> Expr:
    """Elementwise max(a, b)."""
    return func("maximum", a, b)


def minimum(a: Expr, b: Expr) -> Expr:
    """Elementwise min(a, b)."""
    return func("minimum", a, b)


def func(name: str, *args: Expr, **params) -> Expr:
    """Apply the table entry `name` (no algebra beyond the shape rule)."""
    return apply(OPS[name], tuple(args), tuple(sorted(params.items())))


def _built(name: str, *args: Expr) -> Expr:
    """The first identity of `name` that applies to `args`, else the plain node."""
    identity = rulebook.first(name, *args)
    return identity if identity is not None else func(name, *args)


def trace(x: Expr) -> Expr:
    """tr(X)."""
    return _built("trace", x)


def kron(a: Expr, b: Expr) -> Expr:
    """A ⊗ B."""
    return _built("kron", a, b)


def unkron_left(g: Expr, b: Expr) -> Expr:
    """The adjoint of kron(A, B) for A."""
    return _built("unkron_left", g, b)


def unkron_right(g: Expr, a: Expr) -> Expr:
    """The adjoint of kron(A, B) for B."""
    return _built("unkron_right", g, a)


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
            or _stays_open(g) or is_mask(g):
        return g
    return apply(OPS["adjoint"], (g,))


def is_mask(g: Expr) -> bool:
    """where(k, c, 0) or where(k, 0, c) for a number c (or c 1): a
    condition cast, which the products it multiplies take into their branch
    (so a guarding where keeps the NaN of the branch not taken out)."""
    if not is_op(g, "where"):
        return False
    branches = [_coefficient(b) for b in g.args[1:]]
    return any(c == 0 and r is None for c, r in branches) and \
        all(r is None or is_op(r, "ones") for _, r in branches)


def _stays_open(g: Expr) -> bool:
    """Whether g is s I (s a scalar), c 1, c 1 ⊙ v[:, None] (or v[None, :])
    or c X for a variable or a named intermediate X: nothing to compute that
    the products cannot take."""
    if is_op(g, "div") and not g.args[1].shape:
        g = g.args[0]                                      # (s I) / d, c 1 / d
        if is_op(g, "eye", "ones"):
            return True
    if not is_op(g, "mul"):
        return False
    if any(is_op(a, "eye") for a in g.args) and all(is_op(a, "eye") or not a.shape
                                                  for a in g.args):
        return True                                        # s I, s a computed scalar
    rest = [a for a in g.args if not isinstance(a, Const) and not is_op(a, "ones", "eye")]
    if len(rest) == len(g.args) - 1 == 1 and (isinstance(rest[0], Var) or is_op(rest[0], "name")):
        return True
    arrays = [a for a in rest if a.shape]
    if len(arrays) == 1 and arrays[0].ndim == 1 and len(g.args) == 2 \
            and not isinstance(g.args[0], Const):
        return True                                        # s x, s a computed scalar
    return not rest or (len(rest) == 1 and _broadcast_vector(rest[0])[0] is not None
                        and any(is_op(a, "ones") for a in g.args))


def col(v: Expr) -> Expr:
    """A vector as an n x 1 column: `v[:, None]`."""
    return _built("col", v)


def row(v: Expr) -> Expr:
    """A vector as a 1 x n row: `v[None, :]`."""
    return _built("row", v)


def outer(x: Expr, y: Expr) -> Expr:
    """x yᵀ."""
    for v in (x, y):
        if v.ndim != 1:
            hint = "; a scalar times an array is written with *, as in a * w" \
                if not v.shape else ""
            got = fmt(v.shape) if v.shape else "a scalar"
            raise ShapeError(f"outer needs two vectors, got {got}{hint}")
    return _built("outer", x, y)


def solve(a: Expr, b: Expr) -> Expr:
    """A⁻¹ B without the inverse."""
    return _built("solve", a, b)


def inv(x: Expr) -> Expr:
    """X⁻¹ (inv(X⁻¹) = X is a rule)."""
    return _built("inv", x)


# Operators written with symbols rather than called by name (`diagm` is
# written `diag`, which picks it for a vector; a comparison `a < b`, the
# rectangular `eye_rect` `eye(N, M)`).
OPERATORS = frozenset({"add", "mul", "div", "pow", "matmul", "transpose", "col", "row",
                       "name", "adjoint", "diagm", "compare", "eye_rect", "expand_dims",
                       "contract", "permute", "index", "unindex", "gather", "scatter_add", "concatenate"})

# Functions the language calls through a builder (with its algebra) rather
# than through `func`; `mean` is sugar and never appears in the graph.
BUILDERS: dict[str, Callable] = {"outer": outer,
                                 "log": log, "exp": exp,
                                 "diag": diag,
                                 "maximum": maximum, "minimum": minimum, "kron": kron,
                                 "trace": trace,
                                 "solve": solve, "inv": inv}


def function_names() -> list[str]:
    """Every name the language accepts as a function."""
    return sorted((set(OPS) - OPERATORS) | set(BUILDERS) | set(ALIASES))


# The builders of operators written with symbols, for `rebuild` (as before
# this table, a `row` or `unkron_*` node is rebuilt without its identities).
_SYMBOL_BUILDERS: dict[str, Callable] = {"add": add, "mul": mul, "div": div, "pow": power,
                                         "matmul": matmul, "transpose": transpose, "col": col,
                                         "diagm": diag}


def rebuild(node: Expr, args: tuple) -> Expr:
    """`node` with new arguments, through the builders (so their algebra applies)."""
    if not isinstance(node, Apply) or args == node.args:
        return node
    builder = _SYMBOL_BUILDERS.get(node.op) or BUILDERS.get(node.op)
    if builder is None:
        return apply(OPS[node.op], args, node.params)
    return builder(*args, **dict(node.params))
