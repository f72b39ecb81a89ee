"""Random well-typed matcalc problems, built bottom-up, for property tests.

`problems()` is a Hypothesis strategy; `build_problem(source)` builds one
problem from any source of choices (Hypothesis' `draw`, or `RandomSource` for
long runs outside Hypothesis). A problem is *text* in the matcalc language,
built from typed terms whose shapes are known, together with an independent
NumPy reference of its value (naive formulas, nothing from matcalc) and the
inputs to evaluate it at.

Every term carries:

* its shape: a tuple of dimensions, each a product of symbolic names (N, D,
  K) and an integer, so kron's N*D rows are typed too; only operations whose
  shape rule accepts the operands are chosen (broadcasting, `@` in all four
  vector/matrix variants, axes of reductions, squareness);
* an interval [lo, hi] that holds every entry at every input the problem is
  evaluated at (inputs are drawn in [-1, 1], positive ones in [0.5, 1.5]);
  domains are respected by construction: log, sqrt and log1p only see terms
  whose interval is bounded away from the edge of their domain, made so
  where needed (`t ** 2 + 1`, `exp(tanh(t))`, `softplus(t) + 0.5`, ...),
  arcsin and arccos see `0.9 * tanh(t)` and the like, exp/sinh/cosh/tan only
  moderate arguments, and every value stays within CAP so that central
  differences are well conditioned;
* for square matrices with positive determinant, bounds [s_lo, s_hi] on
  their singular values (SPD variables, `M @ M.T + eye(N)`,
  `eye(N) + c * M` with c small, `diag(positive)`, products, sums, inverses
  and Kronecker products of these): det, logdet, inv and solve only see
  these, with condition number at most COND;
* whether it may be exactly constant on an open set (relu, step, maximum,
  ...), so that norm never meets an exact zero;
* the variables it depends on: maximum and minimum only compare operands
  with no variable in common, which never tie on an open set (at a tie the
  documented subgradient is 0, which central differences do not see).

Named intermediates, variables used several times, every operator and
function of `matcalc.ops.function_names()`, broadcasting against `1 x n`,
`n x 1` and vectors, transposes written `.T` and `'`, `[:, None]` and
`[None, :]`, axes None/0/1/-1/-2, dimension names used as scalars, numbers
in every lexical form, comments, `;`, continuation lines inside brackets,
`X, Y: N x D` declarations, `symmetric`/`spd` variables and `wrt` lines are
all generated.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# ------------------------------------------------------------------ limits ---

CAP = 200.0          # every entry of every term stays within [-CAP, CAP]
COND = 1e3           # s_hi / s_lo for matrices given to inv, logdet, det, solve
MAX_DEPTH = 6        # operators nested in one statement (names are leaves)
MAX_ENTRIES = 400    # entries of one array term (kron grows fast)

ADD, MUL, UNARY, POW, POSTFIX, ATOM = 1, 2, 3, 4, 5, 6

DIM_NAMES = ("N", "D", "K")
VARIABLE_NAMES = ("X", "W", "x", "y", "A", "b", "w", "v", "a", "S", "c", "M", "u", "B",
                  "z", "T", "W1", "b1", "Y", "x_hat", "V", "α", "β", "lambda", "np",
                  "sum", "exp", "inputs", "cache", "dout", "dtype", "g", "value")
INTERMEDIATE_NAMES = ("h", "Z1", "A1", "hidden", "t0", "t1", "g0", "H2", "y_hat", "Q",
                      "dW", "dx", "inner", "class_", "δ")
OUTPUT_NAMES = ("loss", "f", "L", "cost", "objective", "out")


# ---------------------------------------------------------------- sources ---

class HypothesisSource:
    """Choices from Hypothesis' `draw` (shrinking towards index 0 / False)."""

    def __init__(self, draw):
        from hypothesis import strategies as st
        self._draw, self._st = draw, st

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(self._st.integers(lo, hi))

    def chance(self, p: float) -> bool:
        """True with probability about p; shrinks to False."""
        return self._draw(self._st.integers(0, 99)) >= 100 - round(100 * p)


class RandomSource:
    """The same choices from `random.Random(seed)` (for long runs)."""

    def __init__(self, seed: int):
        self._rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self._rng.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self._rng.random() < p


def _spelt(text: str, one_in: int) -> bool:
    """Whether a term is spelt another way (einsum for @, transpose(A) for
    A.T): about one in `one_in`, decided by its text, so the random draws,
    and so the problems drawn, stay those of the other spelling."""
    return zlib.crc32(text.encode()) % one_in == 0


def pick(source, items):
    return items[source.integer(0, len(items) - 1)]


# ------------------------------------------------------------- dimensions ---

# A dimension is (coefficient, sorted names): N is (1, ("N",)), kron's N*D is
# (1, ("D", "N")), a literal 2 is (2, ()), and 1 is (1, ()).
ONE = (1, ())


def dim_of(text: str):
    return (int(text), ()) if text.isdigit() else (1, (text,))


def dim_mul(a, b):
    return (a[0] * b[0], tuple(sorted(a[1] + b[1])))


def dim_div(a, b):
    """a / b if b divides a (as a monomial), else None."""
    names = list(a[1])
    for n in b[1]:
        if n not in names:
            return None
        names.remove(n)
    if a[0] % b[0]:
        return None
    return (a[0] // b[0], tuple(names))


def dim_text(d) -> str | None:
    """How a declaration writes d (None for products, which only kron makes)."""
    coef, names = d
    if not names:
        return str(coef)
    if coef == 1 and len(names) == 1:
        return names[0]
    return None


def shape_text(shape) -> str:
    return "scalar" if not shape else " x ".join(dim_text(d) for d in shape)


def broadcast(a, b):
    """NumPy broadcasting of two shapes, or None."""
    n = max(len(a), len(b))
    a, b = (None,) * (n - len(a)) + tuple(a), (None,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x is None or x == ONE:
            out.append(y if y is not None else x)
        elif y is None or y == ONE or x == y:
            out.append(x)
        else:
            return None
    return tuple(out)


# ------------------------------------------------------------------- terms ---

@dataclass(frozen=True)
class Term:
    """A typed expression: its text, shape, bounds and NumPy reference."""

    text: str
    prec: int
    shape: tuple
    lo: float
    hi: float
    depth: int
    ref: Callable = field(compare=False, repr=False)
    vars: frozenset = frozenset()
    flat: bool = False            # may be exactly constant on an open set
    sv: tuple | None = None       # singular-value bounds, det > 0 (square only)
    spd: bool = False             # symmetric positive definite
    number: bool = False          # a numeric literal (never transposed)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def mag(self) -> float:
        return max(abs(self.lo), abs(self.hi))

    @property
    def square(self) -> bool:
        return self.ndim == 2 and self.shape[0] == self.shape[1]

    def positive(self, margin: float = 0.1) -> bool:
        return self.lo >= margin

    def away_from_zero(self, margin: float = 0.2) -> bool:
        return self.lo >= margin or self.hi <= -margin

    def well_conditioned(self) -> bool:
        return self.sv is not None and self.sv[1] <= COND * self.sv[0]


def _unused_scalar_last(statements: list[str], pool: list, out) -> bool:
    """Whether the last line names a scalar that `out`, an array, does not
    use: the language refuses it (the scalar reads as the function meant)."""
    if not statements or not out.shape:
        return False
    name = statements[-1].split(" = ")[0]
    named = [t for t in pool if t.text == name]
    return bool(named) and not named[0].shape and not re.search(rf"\b{name}\b", out.text)


def _unprimed(text: str) -> str:
    """An operand of `*` that ends in a prime, bracketed."""
    return f"({text})" if text.endswith("'") else text


def _interval_mul(a, b):
    ps = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return min(ps), max(ps)


def _interval_pow(lo, hi, p):
    """Bounds of x ** p over [lo, hi] (lo > 0 unless p is a whole number)."""
    if float(p).is_integer() and p >= 0:
        cands = [lo ** p, hi ** p] + ([0.0] if lo < 0 < hi else [])
        return min(cands), max(cands)
    cands = [lo ** p, hi ** p]
    return min(cands), max(cands)


def _mono(f):
    return lambda lo, hi: (float(f(lo)), float(f(hi)))


def _abs_interval(lo, hi):
    if lo <= 0 <= hi:
        return 0.0, max(-lo, hi)
    return min(abs(lo), abs(hi)), max(abs(lo), abs(hi))


def _naive_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _naive_softplus(x):
    return np.log(1 + np.exp(x))


# name: (domain test on (lo, hi), interval, naive NumPy reference, flat)
FUNCTIONS = {
    "tanh": (lambda lo, hi: True, _mono(np.tanh), np.tanh, False),
    "sin": (lambda lo, hi: True, lambda lo, hi: (-1.0, 1.0) if hi - lo > 1 or abs(lo) > 1.5
            or abs(hi) > 1.5 else _mono(np.sin)(lo, hi), np.sin, False),
    "cos": (lambda lo, hi: True, lambda lo, hi: (-1.0, 1.0), np.cos, False),
    "sigmoid": (lambda lo, hi: True, _mono(_naive_sigmoid), _naive_sigmoid, False),
    "arctan": (lambda lo, hi: True, _mono(np.arctan), np.arctan, False),
    "square": (lambda lo, hi: True, lambda lo, hi: _interval_pow(lo, hi, 2), np.square, False),
    "abs": (lambda lo, hi: True, _abs_interval, np.abs, False),
    "softplus": (lambda lo, hi: True, _mono(_naive_softplus), _naive_softplus, False),
    "exp": (lambda lo, hi: lo >= -30 and hi <= 4.6, _mono(np.exp), np.exp, False),
    "log": (lambda lo, hi: lo >= 0.1, _mono(np.log), np.log, False),
    "sqrt": (lambda lo, hi: lo >= 0.1, _mono(np.sqrt), np.sqrt, False),
    "log1p": (lambda lo, hi: lo >= -0.9, _mono(np.log1p), lambda x: np.log(1 + x), False),
    "expm1": (lambda lo, hi: lo >= -30 and hi <= 4.6, _mono(np.expm1),
              lambda x: np.exp(x) - 1, False),
    "sinh": (lambda lo, hi: max(-lo, hi) <= 4.6, _mono(np.sinh), np.sinh, False),
    "cosh": (lambda lo, hi: max(-lo, hi) <= 4.6,
             lambda lo, hi: tuple(np.cosh(_abs_interval(lo, hi))), np.cosh, False),
    "tan": (lambda lo, hi: max(-lo, hi) <= 1.2, _mono(np.tan), np.tan, False),
    "arcsin": (lambda lo, hi: max(-lo, hi) <= 0.9, _mono(np.arcsin), np.arcsin, False),
    "arccos": (lambda lo, hi: max(-lo, hi) <= 0.9,
               lambda lo, hi: (float(np.arccos(hi)), float(np.arccos(lo))), np.arccos, False),
    "relu": (lambda lo, hi: True, lambda lo, hi: (max(lo, 0.0), max(hi, 0.0)),
             lambda x: np.maximum(x, 0), True),
    "step": (lambda lo, hi: True, lambda lo, hi: (float(lo > 0), float(hi > 0)),
             lambda x: (np.asarray(x) > 0) * 1.0, True),
    "sign": (lambda lo, hi: True, lambda lo, hi: (float(np.sign(lo)), float(np.sign(hi))),
             np.sign, True),
}
# Which fix makes an argument acceptable: a bounded squash, a unit squash or
# a positive form.
NEEDS = {"exp": "bounded", "expm1": "bounded", "sinh": "bounded", "cosh": "bounded",
         "tan": "unit", "arcsin": "unit", "arccos": "unit",
         "log": "positive", "sqrt": "positive", "log1p": "positive"}


_erf = np.vectorize(math.erf, otypes=[float])
# Issue 16's elementwise functions (generated by `Builder.more`, so that the
# others keep their share of the elementwise steps).
MORE_FUNCTIONS = ("erf", "log2", "log10", "arcsinh", "arccosh", "arctanh")
FUNCTIONS.update({
    "erf": (lambda lo, hi: True, _mono(_erf), _erf, False),
    "log2": (lambda lo, hi: lo >= 0.1, _mono(np.log2), np.log2, False),
    "log10": (lambda lo, hi: lo >= 0.1, _mono(np.log10), np.log10, False),
    "arcsinh": (lambda lo, hi: True, _mono(np.arcsinh), np.arcsinh, False),
    "arccosh": (lambda lo, hi: lo >= 1.1, _mono(np.arccosh), np.arccosh, False),
    "arctanh": (lambda lo, hi: max(-lo, hi) <= 0.9, _mono(np.arctanh), np.arctanh, False),
})



def _silu(x):
    return x * _naive_sigmoid(x)


def _gelu(x):
    return x * (1 + _erf(np.divide(x, np.sqrt(2)))) / 2


def _with_least(f, at: float):
    """The interval of f, decreasing up to `at` and increasing after it."""
    def interval(lo, hi):
        ends = (float(f(lo)), float(f(hi)))
        return (float(f(at)) if lo < at < hi else min(ends)), max(ends)
    return interval


# The activations, drawn with the first functions (logsigmoid is
# log_sigmoid's alias).
FUNCTIONS.update({
    "silu": (lambda lo, hi: True, _with_least(_silu, -1.2784645427610738), _silu, False),
    "gelu": (lambda lo, hi: True, _with_least(_gelu, -0.7517915950241592), _gelu, False),
    "elu": (lambda lo, hi: True, _mono(lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))),
            lambda x: np.where(np.greater(x, 0), x, np.expm1(np.minimum(x, 0))), False),
    "leaky_relu": (lambda lo, hi: True, _mono(lambda x: x if x >= 0 else 0.01 * x),
                   lambda x: np.where(np.greater_equal(x, 0), x, np.multiply(0.01, x)), False),
    "log_sigmoid": (lambda lo, hi: True, _mono(lambda x: -np.logaddexp(0, -x)),
                    lambda x: -np.logaddexp(0, np.negative(x)), False),
})
FUNCTIONS["logsigmoid"] = FUNCTIONS["log_sigmoid"]
NEEDS.update({"log2": "positive", "log10": "positive", "arccosh": "above_one",
              "arctanh": "unit"})
COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
           "==": np.equal, "!=": np.not_equal}


def _softmax_ref(x, axis):
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        return np.ones_like(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _logsumexp_ref(x, axis):
    x = np.asarray(x, dtype=float)
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def _unkron_left_ref(g, b):
    p, q = b.shape
    m, n = g.shape[0] // p, g.shape[1] // q
    return np.array([[np.sum(g[i * p:(i + 1) * p, j * q:(j + 1) * q] * b) for j in range(n)]
                     for i in range(m)])


def _unkron_right_ref(g, a):
    m, n = a.shape
    p, q = g.shape[0] // m, g.shape[1] // n
    out = np.zeros((p, q))
    for i in range(m):
        for j in range(n):
            out += a[i, j] * g[i * p:(i + 1) * p, j * q:(j + 1) * q]
    return out


def _number_text(value: float, source) -> str:
    """A literal for value in one of the lexical forms the language takes."""
    if float(value).is_integer():
        forms = [str(int(value)), f"{value:.1f}", f"{int(value)}.", f"{value:g}e0"]
    else:
        text = repr(float(value))
        forms = [text]
        if text.startswith("0."):
            forms.append(text[1:])                       # .5
        mantissa, exponent = f"{value:e}".split("e")
        forms.append(f"{float(mantissa):g}e{int(exponent)}")   # 2.5e-1
        forms.append(f"{float(mantissa):g}E{int(exponent):+d}")
    return pick(source, forms)


# ---------------------------------------------------------------- problem ---

@dataclass
class Variable:
    name: str
    shape: tuple
    kind: str               # 'general', 'positive', 'spd', 'symmetric'
    structure: str = ""     # '' or the declared 'spd' / 'symmetric'


@dataclass
class GeneratedProblem:
    """Problem text, the sizes of its dimensions, inputs and the reference."""

    text: str
    sizes: dict
    variables: list
    output_shape: tuple
    reference: Callable = field(repr=False)
    seed: int = 0
    wrt: tuple | None = None
    depth: int = 0                   # operators nested in the deepest statement
    bounds: tuple = (-CAP, CAP)      # every entry of the function's value

    def inputs(self, seed: int | None = None) -> dict:
        """Inputs in the ranges the terms' intervals assume."""
        rng = np.random.default_rng(self.seed if seed is None else seed)
        out = {}
        for v in self.variables:
            shape = tuple(self.size(d) for d in v.shape)
            if v.kind == "positive":
                value = rng.uniform(0.5, 1.5, shape)
            elif v.kind == "spd":
                b = rng.uniform(-1, 1, shape)
                value = b @ b.T / shape[0] + np.eye(shape[0])
                value = (value + value.T) / 2
            elif v.kind == "symmetric":
                b = rng.uniform(-1, 1, shape)
                value = (b + b.T) / 2
            else:
                value = rng.uniform(-1, 1, shape)
            out[v.name] = float(value) if not shape else value
        return out

    def size(self, d) -> int:
        coef, names = d
        return coef * math.prod(self.sizes[n] for n in names)

    def dims(self) -> dict:
        """Sizes of the dimension names the problem declares."""
        used = {n for v in self.variables for d in v.shape for n in d[1]}
        return {n: s for n, s in self.sizes.items() if n in used}

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return (f"GeneratedProblem(text={self.text!r}, dims={self.dims()}, "
                f"input_seed={self.seed})")


class Builder:
    """Builds one problem from a source of choices."""

    def __init__(self, source, max_depth: int = MAX_DEPTH, max_steps: int = 12):
        self.src = source
        self.max_depth = max_depth
        self.max_steps = max_steps
        self.style = {}

    # --------------------------------------------------------- text helpers
    def wrap(self, t: Term, prec: int) -> str:
        return t.text if t.prec >= prec else f"({t.text})"

    def sep(self, op: str) -> str:
        return op if self.style["compact"] else f" {op} "

    def call(self, name: str, args: list[str], **kwargs) -> str:
        parts = list(args) + [f"{k}={v}" for k, v in kwargs.items()]
        comma = "," if self.style["compact"] else ", "
        if self.style["newlines"] and len(parts) > 1 and self.src.chance(0.2):
            return f"{name}(\n    " + ",\n    ".join(parts) + "\n)"
        return f"{name}({comma.join(parts)})"

    # ------------------------------------------------------- term builders
    def term(self, text, prec, shape, interval, parts, ref, **kw) -> Term | None:
        lo, hi = interval
        if not (math.isfinite(lo) and math.isfinite(hi)) or max(abs(lo), abs(hi)) > CAP:
            return None
        if math.prod(self.size(d) for d in shape) > MAX_ENTRIES:
            return None
        depth = 1 + max((p.depth for p in parts), default=0)
        deps = frozenset().union(*(p.vars for p in parts)) if parts else frozenset()
        flat = kw.pop("flat", False) or any(p.flat for p in parts)
        return Term(text, prec, tuple(shape), float(lo), float(hi), depth, ref, deps,
                    flat, **kw)

    def size(self, d) -> int:
        coef, names = d
        return coef * math.prod(self.sizes[n] for n in names)

    def number(self, value: float) -> Term:
        text = _number_text(value, self.src)
        v = float(value)
        return Term(text, ATOM, (), v, v, 0, lambda env, v=v: v, number=True)

    def dim_scalar(self, name: str) -> Term:
        n = float(self.sizes[name])
        return Term(name, ATOM, (), n, n, 0, lambda env, n=n: n)

    def unary(self, name: str, t: Term) -> Term | None:
        if t is None:
            return None
        ok, interval, ref, flat = FUNCTIONS[name]
        if not ok(t.lo, t.hi):
            return None
        lo, hi = interval(t.lo, t.hi)
        written = "tr" if name == "trace" else name
        return self.term(self.call(written, [t.text]), ATOM, t.shape, (min(lo, hi), max(lo, hi)),
                         [t], lambda env, f=ref, a=t.ref: f(a(env)), flat=flat)

    def binary(self, op: str, a: Term, b: Term) -> Term | None:
        if a is None or b is None:
            return None
        shape = broadcast(a.shape, b.shape)
        if shape is None:
            return None
        A, B = (a.lo, a.hi), (b.lo, b.hi)
        sv, spd = None, False
        if op == "+":
            interval = (A[0] + B[0], A[1] + B[1])
            text, prec = self.wrap(a, ADD) + self.sep("+") + self.wrap(b, MUL), ADD
            ref = lambda env, x=a.ref, y=b.ref: x(env) + y(env)  # noqa: E731
            if a.spd and b.spd:
                sv, spd = (a.sv[0] + b.sv[0], a.sv[1] + b.sv[1]), True
        elif op == "-":
            interval = (A[0] - B[1], A[1] - B[0])
            text, prec = self.wrap(a, ADD) + self.sep("-") + self.wrap(b, MUL), ADD
            ref = lambda env, x=a.ref, y=b.ref: x(env) - y(env)  # noqa: E731
        elif op == "*":
            interval = _interval_mul(A, B)
            # x' * y is refused (MATLAB's matrix product): (x') * y is elementwise
            text, prec = _unprimed(self.wrap(a, MUL)) + self.sep("*") + \
                _unprimed(self.wrap(b, UNARY)), MUL
            ref = lambda env, x=a.ref, y=b.ref: x(env) * y(env)  # noqa: E731
            for m, s in ((a, b), (b, a)):
                if m.sv is not None and s.ndim == 0 and s.lo > 0:
                    sv, spd = (m.sv[0] * s.lo, m.sv[1] * s.hi), m.spd
        elif op == "/":
            if not b.away_from_zero():
                return None
            interval = _interval_mul(A, (1 / B[1], 1 / B[0]))
            text, prec = self.wrap(a, MUL) + self.sep("/") + self.wrap(b, UNARY), MUL
            ref = lambda env, x=a.ref, y=b.ref: x(env) / y(env)  # noqa: E731
            if a.sv is not None and b.ndim == 0 and b.lo > 0:
                sv, spd = (a.sv[0] / b.hi, a.sv[1] / b.lo), a.spd
        elif op == "**":
            if b.number and float(b.lo).is_integer() and b.lo >= 0:
                interval = _interval_pow(a.lo, a.hi, b.lo)
            elif a.lo >= 0.1 and b.mag <= 3:
                if b.number:
                    interval = _interval_pow(a.lo, a.hi, b.lo)
                else:   # x ** y = exp(y log x): extremes at the corners
                    corners = [x ** y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
                    interval = (min(corners), max(corners))
            elif a.number and a.lo > 0 and b.mag <= 4:
                corners = [a.lo ** y for y in (b.lo, b.hi)]
                interval = (min(corners), max(corners))
            else:
                return None
            if a.number and a.lo < 0:
                return None
            text = self.wrap(a, POSTFIX) + self.sep("**") + self.wrap(b, UNARY)
            prec = POW
            ref = lambda env, x=a.ref, y=b.ref: np.power(x(env), y(env))  # noqa: E731
        else:
            raise ValueError(op)
        return self.term(text, prec, shape, interval, [a, b], ref, sv=sv, spd=spd)

    def neg(self, t: Term) -> Term | None:
        if t is None:
            return None
        inner = self.wrap(t, UNARY)
        if inner.startswith("-"):
            inner = f"({t.text})"
        return self.term("-" + inner, UNARY, t.shape, (-t.hi, -t.lo), [t],
                         lambda env, x=t.ref: -x(env))

    def extremum(self, name: str, a: Term, b: Term) -> Term | None:
        if a is None or b is None:
            return None
        shape = broadcast(a.shape, b.shape)
        if shape is None or a.vars & b.vars:
            return None     # operands with a variable in common may tie exactly
        f = max if name == "maximum" else min
        ref = np.maximum if name == "maximum" else np.minimum
        return self.term(self.call(name, [a.text, b.text]), ATOM, shape,
                         (f(a.lo, b.lo), f(a.hi, b.hi)), [a, b],
                         lambda env, x=a.ref, y=b.ref, r=ref: r(x(env), y(env)), flat=True)

    def matmul(self, a: Term, b: Term) -> Term | None:
        if a is None or b is None:
            return None
        if not a.shape or not b.shape or a.shape[-1] != b.shape[0]:
            return None
        k = self.size(a.shape[-1])
        lo, hi = _interval_mul((a.lo, a.hi), (b.lo, b.hi))
        sv = None
        if a.sv is not None and b.sv is not None:
            sv = (a.sv[0] * b.sv[0], a.sv[1] * b.sv[1])
        text, prec = self.wrap(a, MUL) + self.sep("@") + self.wrap(b, UNARY), MUL
        if _spelt(text, 10):  # the product as an einsum: "ij,jk->ik", "ij,j->i", ...
            ia, ib = ("ij" if a.ndim == 2 else "j"), ("jk" if b.ndim == 2 else "j")
            out = (ia + ib).replace("j", "")
            text, prec = self.call("einsum", [f'"{ia},{ib}->{out}"', a.text, b.text]), ATOM
        return self.term(text, prec, a.shape[:-1] + b.shape[1:], (k * lo, k * hi), [a, b],
                         lambda env, x=a.ref, y=b.ref: np.asarray(x(env)) @ np.asarray(y(env)),
                         sv=sv)

    def transpose(self, t: Term) -> Term | None:
        if t is None:
            return None
        if t.number or t.ndim == 0:
            return None
        written = self.wrap(t, POSTFIX) + ("'" if self.style["prime"] else ".T")
        prec = POSTFIX
        if _spelt(written, 8):  # transpose(A), or swapaxes(A, 0, 1) of a matrix
            prec = ATOM
            written = self.call("swapaxes", [t.text, "0", "1"]) if t.ndim == 2 and \
                _spelt(t.text, 2) else self.call("transpose", [t.text])
        return self.term(written, prec, t.shape[::-1],
                         (t.lo, t.hi), [t], lambda env, x=t.ref: np.transpose(x(env)),
                         sv=t.sv, spd=t.spd)

    def index(self, t: Term, column: bool) -> Term | None:
        if t is None:
            return None
        if t.ndim != 1:
            return None
        text = self.wrap(t, POSTFIX) + ("[:, None]" if column else "[None, :]")
        shape = (t.shape[0], ONE) if column else (ONE, t.shape[0])
        ref = (lambda env, x=t.ref: np.asarray(x(env))[:, None]) if column else \
            (lambda env, x=t.ref: np.asarray(x(env))[None, :])
        return self.term(text, POSTFIX, shape, (t.lo, t.hi), [t], ref)

    def axis_choice(self, t: Term, along: bool = False):
        """(text of the axis keyword or None, numpy axis, reduced count);
        `along`: over one axis of a matrix (0, 1, -1 or -2)."""
        if t.ndim == 1:
            options = [None, 0, -1, "None"]
        else:
            options = [0, 1, -1, -2] if along else [None, 0, 1, -1, -2, "None"]
        axis = pick(self.src, options)
        if axis is None or axis == "None":
            count = math.prod(self.size(d) for d in t.shape)
            return ({} if axis is None else {"axis": "None"}), None, count
        np_axis = axis % t.ndim
        return {"axis": str(axis)}, (None if t.ndim == 1 else np_axis), self.size(t.shape[np_axis])

    def reduce(self, name: str, t: Term, along: bool = False) -> Term | None:
        if t is None:
            return None
        if t.ndim == 0:
            return None
        kwargs, axis, count = self.axis_choice(t, along)
        shape = () if axis is None else t.shape[:axis] + t.shape[axis + 1:]
        if name == "sum":
            interval = (count * t.lo, count * t.hi)
            ref = lambda env, x=t.ref, a=axis: np.sum(x(env), axis=a)  # noqa: E731
        elif name == "mean":
            interval = (t.lo, t.hi)
            ref = lambda env, x=t.ref, a=axis: np.mean(x(env), axis=a)  # noqa: E731
        elif name == "logsumexp":
            interval = (t.lo + math.log(count), t.hi + math.log(count))
            ref = lambda env, x=t.ref, a=axis: _logsumexp_ref(x(env), a)  # noqa: E731
        elif name == "softmax":
            spread = t.hi - t.lo
            interval = (1 / (1 + (count - 1) * math.exp(min(spread, 700))),
                        1 / (1 + (count - 1) * math.exp(-min(spread, 700))))
            shape = t.shape
            ref = lambda env, x=t.ref, a=axis: _softmax_ref(x(env), a)  # noqa: E731
        elif name == "log_softmax":
            interval = (-(t.hi - t.lo) - math.log(count), 0.0)
            shape = t.shape
            ref = lambda env, x=t.ref, a=axis: np.log(_softmax_ref(x(env), a))  # noqa: E731
        elif name in ("max", "min"):
            interval = (t.lo, t.hi)
            f = np.max if name == "max" else np.min
            ref = lambda env, x=t.ref, a=axis, f=f: f(x(env), axis=a)  # noqa: E731
        elif name == "var":
            interval = (0.0, (t.hi - t.lo) ** 2)
            ref = lambda env, x=t.ref, a=axis: np.var(x(env), axis=a)  # noqa: E731
        elif name == "std":   # only of a variable over at least two entries: never 0
            if t.depth or t.number or not t.vars or count < 2:
                return None
            interval = (0.0, t.hi - t.lo)
            ref = lambda env, x=t.ref, a=axis: np.std(x(env), axis=a)  # noqa: E731
        else:
            raise ValueError(name)
        if axis is not None and t.ndim == 2 and name not in ("softmax", "log_softmax") \
                and self.src.chance(0.2):       # keepdims=True: the axis kept, of size 1
            kwargs = {**kwargs, "keepdims": "True"}
            shape = tuple(ONE if k == axis else d for k, d in enumerate(t.shape))
            ref = lambda env, r=ref, a=axis: np.expand_dims(r(env), a)  # noqa: E731
        return self.term(self.call(name, [t.text], **kwargs), ATOM, shape, interval, [t], ref)

    def matrix_function(self, name: str, t: Term, b: Term | None = None) -> Term | None:
        if t is None:
            return None
        n = self.size(t.shape[0]) if t.ndim else 0
        if name == "trace":
            if not t.square:
                return None
            written = pick(self.src, ["trace", "tr"])
            return self.term(self.call(written, [t.text]), ATOM, (), (n * t.lo, n * t.hi), [t],
                             lambda env, x=t.ref: np.trace(x(env)))
        if not (t.square and t.well_conditioned()):
            return None
        s_lo, s_hi = t.sv
        if name == "det":
            if s_hi ** n > CAP or s_lo ** n < 1 / CAP:
                return None
            return self.term(self.call("det", [t.text]), ATOM, (), (s_lo ** n, s_hi ** n), [t],
                             lambda env, x=t.ref: np.linalg.det(x(env)))
        if name == "logdet":
            return self.term(self.call("logdet", [t.text]), ATOM, (),
                             (n * math.log(s_lo), n * math.log(s_hi)), [t],
                             lambda env, x=t.ref: np.log(abs(np.linalg.det(x(env)))))
        if name == "inv":
            return self.term(self.call("inv", [t.text]), ATOM, t.shape, (-1 / s_lo, 1 / s_lo),
                             [t], lambda env, x=t.ref: np.linalg.inv(x(env)),
                             sv=(1 / s_hi, 1 / s_lo), spd=t.spd)
        if name == "solve":
            if b is None or not b.shape or b.shape[0] != t.shape[0] or b.ndim > 2:
                return None
            bound = math.sqrt(n) * b.mag / s_lo
            return self.term(self.call("solve", [t.text, b.text]), ATOM, b.shape,
                             (-bound, bound), [t, b],
                             lambda env, x=t.ref, y=b.ref: np.linalg.solve(x(env), y(env)))
        raise ValueError(name)

    def diag(self, t: Term) -> Term | None:
        if t is None:
            return None
        if t.ndim == 1:
            sv = (t.lo, t.hi) if t.lo > 0 else None
            return self.term(self.call("diag", [t.text]), ATOM, (t.shape[0], t.shape[0]),
                             (min(t.lo, 0.0), max(t.hi, 0.0)), [t],
                             lambda env, x=t.ref: np.diag(x(env)), sv=sv, spd=sv is not None)
        if t.square:
            return self.term(self.call("diag", [t.text]), ATOM, (t.shape[0],), (t.lo, t.hi),
                             [t], lambda env, x=t.ref: np.diag(x(env)))
        return None

    def norm(self, name: str, t: Term) -> Term | None:
        if t is None:
            return None
        if t.ndim == 0 and name == "norm1":
            return None
        count = math.prod(self.size(d) for d in t.shape)
        small, big = _abs_interval(t.lo, t.hi)
        if name == "norm":
            if t.flat and small == 0:
                return None   # may be exactly 0, where the norm has no gradient
            if small == 0:    # exactly 0 at the inputs, as diag(x[:, None] - x) is?
                with np.errstate(all="ignore"):
                    size = float(np.sqrt(np.sum(np.square(t.ref(self.env)))))
                if not size > 1e-3:
                    return None
            return self.term(self.call("norm", [t.text]), ATOM, (),
                             (math.sqrt(count) * small, math.sqrt(count) * big), [t],
                             lambda env, x=t.ref: np.sqrt(np.sum(np.square(x(env)))))
        return self.term(self.call("norm1", [t.text]), ATOM, (), (count * small, count * big),
                         [t], lambda env, x=t.ref: np.sum(np.abs(x(env))))

    def kron(self, a: Term, b: Term) -> Term | None:
        if a is None or b is None:
            return None
        if a.ndim != 2 or b.ndim != 2:
            return None
        shape = (dim_mul(a.shape[0], b.shape[0]), dim_mul(a.shape[1], b.shape[1]))
        sv = None
        if a.sv is not None and b.sv is not None:
            sv = (a.sv[0] * b.sv[0], a.sv[1] * b.sv[1])
        return self.term(self.call("kron", [a.text, b.text]), ATOM, shape,
                         _interval_mul((a.lo, a.hi), (b.lo, b.hi)), [a, b],
                         lambda env, x=a.ref, y=b.ref: np.kron(x(env), y(env)),
                         sv=sv, spd=a.spd and b.spd)

    def unkron(self, left: bool, g: Term, other: Term) -> Term | None:
        if g is None or other is None or g.ndim != 2 or other.ndim != 2:
            return None
        rows, cols = dim_div(g.shape[0], other.shape[0]), dim_div(g.shape[1], other.shape[1])
        if rows is None or cols is None:
            return None
        count = self.size(other.shape[0]) * self.size(other.shape[1])
        lo, hi = _interval_mul((g.lo, g.hi), (other.lo, other.hi))
        name = "unkron_left" if left else "unkron_right"
        ref = _unkron_left_ref if left else _unkron_right_ref
        return self.term(self.call(name, [g.text, other.text]), ATOM, (rows, cols),
                         (count * lo, count * hi), [g, other],
                         lambda env, x=g.ref, y=other.ref, r=ref: r(x(env), y(env)))

    def outer(self, a: Term, b: Term) -> Term | None:
        if a is None or b is None:
            return None
        if a.ndim != 1 or b.ndim != 1:
            return None
        return self.term(self.call("outer", [a.text, b.text]), ATOM, (a.shape[0], b.shape[0]),
                         _interval_mul((a.lo, a.hi), (b.lo, b.hi)), [a, b],
                         lambda env, x=a.ref, y=b.ref: np.outer(x(env), y(env)))

    def constant_array(self, kind: str, shape) -> Term | None:
        texts = [dim_text(d) for d in shape]
        if not shape or None in texts or any(t not in self.declared_dims and not t.isdigit()
                                             for t in texts):
            return None
        sizes = tuple(self.size(d) for d in shape)
        if kind == "eye":
            if len(shape) != 2 or shape[0] != shape[1]:
                return None
            n = sizes[0]
            return Term(self.call("eye", texts[:1]), ATOM, tuple(shape), 0.0, 1.0, 0,
                        lambda env, n=n: np.eye(n), sv=(1.0, 1.0), spd=True)
        value = 1.0 if kind == "ones" else 0.0
        return Term(self.call(kind, texts), ATOM, tuple(shape), value, value, 0,
                    lambda env, s=sizes, v=value: np.full(s, v), flat=kind == "zeros")

    # ------------------------------------------------- fixes for domains
    def bounded(self, t: Term) -> Term | None:
        """|value| <= 1.6: a squashing function of t."""
        name = pick(self.src, ["tanh", "sin", "sigmoid", "arctan", "cos"])
        return self.unary(name, t)

    def unit(self, t: Term) -> Term | None:
        """|value| <= 0.9."""
        choice = self.src.integer(0, 3)
        if choice == 0:
            return self.binary("*", self.number(0.9), self.unary("tanh", t))
        if choice == 1:
            return self.binary("/", self.unary("tanh", t), self.number(2))
        if choice == 2:
            return self.binary("-", self.unary("sigmoid", t), self.number(0.5))
        return self.binary("*", self.unary("sin", t), self.number(0.75))

    def positive(self, t: Term) -> Term | None:
        """value >= 0.1, by construction."""
        options = [
            lambda: self.binary("+", self.binary("**", t, self.number(2)), self.number(1)),
            lambda: self.unary("exp", self.unary("tanh", t)),
            lambda: self.binary("+", self.unary("softplus", t), self.number(0.5)),
            lambda: self.binary("+", self.unary("sigmoid", t), self.number(0.1)),
            lambda: self.binary("+", self.number(1), self.binary("*", t, t)),
            lambda: self.unary("cosh", self.unary("tanh", t)),
            lambda: self.unary("exp", t),
        ]
        first = self.src.integer(0, len(options) - 1)
        for k in range(len(options)):
            out = options[(first + k) % len(options)]()
            if out is not None and out.lo >= 0.1:
                return out
        return None

    def fix(self, need: str, t: Term) -> Term | None:
        if need == "positive":
            return t if t.lo >= 0.1 else self.positive(t)
        if need == "above_one":
            return t if t.lo >= 1.1 else self.binary("+", self.number(1), self.fix("positive", t))
        if need == "unit":
            return t if t.mag <= 0.9 else self.unit(t)
        if need == "bounded":
            return t if t.mag <= 3 else self.bounded(t)
        raise ValueError(need)

    def conditioned(self, t: Term) -> Term | None:
        """A square matrix with det > 0 and bounded condition number made from t."""
        if t.ndim == 2 and t.well_conditioned():
            return t
        if t.ndim == 1:
            p = self.fix("positive", t)
            return self.diag(p) if p is not None else None
        if t.ndim != 2:
            return None
        choice = self.src.integer(0, 2)
        r, c = t.shape
        if choice == 0 and t.square and dim_text(r) is not None:
            # eye(n) + s * M with n s max|M| <= 1/2: singular values in [1/2, 3/2]
            n = self.size(r)
            s = 0.5 / (n * max(t.mag, 1e-3))
            s = float(f"{s:.1g}")
            while n * s * t.mag > 0.5:
                s /= 2
            eye = self.constant_array("eye", (r, r))
            if eye is None or s <= 0:
                return None
            out = self.binary("+", eye, self.binary("*", self.number(s), t))
            if out is None:
                return None
            return Term(out.text, out.prec, out.shape, out.lo, out.hi, out.depth, out.ref,
                        out.vars, out.flat, sv=(0.5, 1.5))
        # M @ M.T + eye: singular values in [1, 1 + |M|_F^2]
        m = t if t.mag <= 3 else self.unary("tanh", t)
        if m is None:
            return None
        transposed = choice == 2 and dim_text(c) is not None
        rows = c if transposed else r
        eye = self.constant_array("eye", (rows, rows))
        if eye is None:
            return None
        mt = self.transpose(m)
        gram = self.matmul(mt, m) if transposed else self.matmul(m, mt)
        out = self.binary("+", gram, eye) if gram is not None else None
        if out is None:
            return None
        frob = self.size(r) * self.size(c) * m.mag ** 2
        return Term(out.text, out.prec, out.shape, out.lo, out.hi, out.depth, out.ref,
                    out.vars, out.flat, sv=(1.0, 1.0 + frob), spd=True)

    # --------------------------------------------------------- operands
    def operands(self, room: int = 1, pred=lambda t: True) -> list[Term]:
        return [t for t in self.pool if t.depth + room <= self.max_depth and pred(t)]

    def choose(self, room: int = 1, pred=lambda t: True) -> Term | None:
        """An operand: often one of the latest terms, so that depth grows."""
        cands = self.operands(room, pred)
        if not cands:
            return None
        if len(cands) > 3 and self.src.chance(0.6):
            return cands[-1 - self.src.integer(0, 2)]
        return pick(self.src, cands)

    def partner(self, a: Term, room: int = 1, ok=lambda a, b: True) -> Term | None:
        """A second operand that broadcasts with a: from the pool or a constant."""
        if self.src.chance(0.25):
            return self.constant_like(a)
        cands = self.operands(room, lambda b: broadcast(a.shape, b.shape) is not None
                              and ok(a, b))
        if not cands:
            return self.constant_like(a)
        return pick(self.src, cands)

    def constant_like(self, a: Term) -> Term | None:
        choice = self.src.integer(0, 3)
        if choice == 0 or not a.shape:
            return self.number(pick(self.src, [2, 0.5, 3, 1.5, 0.25, 10, 1, 0.001, 4]))
        if choice == 1 and self.declared_dims:
            return self.dim_scalar(pick(self.src, sorted(self.declared_dims)))
        if choice == 2:
            out = self.constant_array(pick(self.src, ["ones", "zeros"]), a.shape)
            if out is not None:
                return out
        out = self.constant_array("eye", a.shape) if a.square else None
        return out or self.number(2)

    # ------------------------------------------------------------ steps
    def step(self) -> Term | None:
        kind = self.src.integer(0, 19)
        src = self.src
        if kind == 19:                                  # issue 16's operators
            return self.more()
        if kind == 18:                                  # square operands, every orientation
            return self.oriented()
        if kind == 0:                                   # + - * /
            a = self.choose(room=3)
            if a is None:
                return None
            op = pick(src, ["+", "-", "*", "/"])
            b = self.partner(a, room=3)
            if b is None:
                return None
            if op == "/" and not b.away_from_zero():
                b = self.fix("positive", b)
            if src.chance(0.3):
                a, b = (b, a) if op != "/" or a.away_from_zero() else (a, b)
            return self.binary(op, a, b) if b is not None else None
        if kind == 1:                                   # elementwise function
            return self.elementwise([n for n in FUNCTIONS if n not in MORE_FUNCTIONS])
        if kind == 2:                                   # @
            a = self.choose(pred=lambda t: t.ndim >= 1)
            if a is None:
                return None
            cands = self.operands(pred=lambda t: t.ndim >= 1 and t.shape[0] == a.shape[-1])
            if not cands:
                if a.ndim == 2 and src.chance(0.5):
                    return self.matmul(a, self.transpose(a))
                return None
            b = pick(src, cands)
            if src.chance(0.5) and b.ndim == 2 and a.ndim == 2:
                return self.matmul(self.transpose(b), self.transpose(a))
            return self.matmul(a, b)
        if kind == 3:                                   # reductions
            a = self.choose(pred=lambda t: t.ndim >= 1)
            name = pick(src, ["sum", "mean", "logsumexp", "softmax"])
            return self.reduce(name, a) if a is not None else None
        if kind == 4:                                   # transpose, [:, None], [None, :]
            a = self.choose(pred=lambda t: t.ndim >= 1 and not t.number)
            if a is None:
                return None
            if a.ndim == 1 and src.chance(0.7):
                return self.index(a, column=src.chance(0.5))
            return self.transpose(a)
        if kind == 5:                                   # det, logdet, inv, solve
            name = pick(src, ["logdet", "inv", "solve", "det"])
            a = self.choose(room=4, pred=lambda t: t.ndim >= 1)
            if a is None:
                return None
            m = self.conditioned(a)
            if m is None or m.depth + 1 > self.max_depth:
                return None
            if name == "solve":
                cands = self.operands(pred=lambda t: 1 <= t.ndim <= 2 and t.shape[0] == m.shape[0])
                b = pick(src, cands) if cands else None
                return self.matrix_function("solve", m, b)
            return self.matrix_function(name, m)
        if kind == 6:                                   # trace, diag
            a = self.choose(pred=lambda t: t.square or t.ndim == 1)
            if a is None:
                return None
            if a.square and src.chance(0.5):
                return self.matrix_function("trace", a)
            return self.diag(a)
        if kind == 7:                                   # norms
            a = self.choose(pred=lambda t: t.ndim >= 1)
            return self.norm(pick(src, ["norm", "norm1"]), a) if a is not None else None
        if kind == 8:                                   # outer, kron
            if src.chance(0.5):
                a = self.choose(pred=lambda t: t.ndim == 1)
                b = self.choose(pred=lambda t: t.ndim == 1)
                return self.outer(a, b) if a is not None and b is not None else None
            a = self.choose(pred=lambda t: t.ndim == 2)
            b = self.choose(pred=lambda t: t.ndim == 2)
            return self.kron(a, b) if a is not None and b is not None else None
        if kind == 9:                                   # unkron
            left = src.chance(0.5)
            g = self.choose(pred=lambda t: t.ndim == 2 and len(t.shape[0][1]) > 1)
            if g is not None and src.chance(0.5):
                cands = self.operands(pred=lambda t: t.ndim == 2 and
                                      dim_div(g.shape[0], t.shape[0]) is not None and
                                      dim_div(g.shape[1], t.shape[1]) is not None)
                return self.unkron(left, g, pick(src, cands)) if cands else None
            # G of the shape of kron(A, B), against B (left) or A (right)
            a = self.choose(room=3, pred=lambda t: t.ndim == 2)
            b = self.choose(room=3, pred=lambda t: t.ndim == 2)
            k = self.kron(a, b)
            if k is None:
                return None
            g = pick(src, [lambda: k, lambda: self.unary("tanh", k),
                           lambda: self.binary("*", k, self.number(2))])()
            return self.unkron(left, g, b if left else a)
        if kind == 10:                                  # maximum, minimum
            a = self.choose()
            if a is None:
                return None
            b = self.partner(a, ok=lambda a, b: not a.vars & b.vars)
            if b is None or b.vars & a.vars:
                return None
            return self.extremum(pick(src, ["maximum", "minimum"]), a, b)
        if kind == 11:                                  # powers
            a = self.choose(room=3)
            if a is None:
                return None
            p = pick(src, [2, 3, 0.5, -1, 1.5, -2, 1 / 3, "var"])
            if p == "var":
                e = self.choose(room=3, pred=lambda t: t.ndim == 0 and t.mag <= 3)
                if e is None:
                    return None
                if src.chance(0.3):
                    return self.binary("**", self.number(2), e)
                base = self.fix("positive", a)
                return self.binary("**", base, e) if base is not None else None
            if p == 1 / 3:
                base = self.fix("positive", a)
                third = self.binary("/", self.number(1), self.number(3))
                return self.binary("**", base, third) if base is not None else None
            if not float(p).is_integer() or p < 0:
                a = self.fix("positive", a)
            return self.binary("**", a, self.number(p)) if a is not None else None
        if kind == 12:                                  # negation
            a = self.choose()
            return self.neg(a) if a is not None else None
        if kind == 13:                                  # a dimension as a scalar
            a = self.choose()
            if a is None or not self.declared_dims:
                return None
            n = self.dim_scalar(pick(src, sorted(self.declared_dims)))
            return self.binary(pick(src, ["/", "*"]), a, n)
        if kind == 14:                                  # softmax/logsumexp explicitly
            a = self.choose(pred=lambda t: t.ndim >= 1)
            return self.reduce(pick(src, ["softmax", "logsumexp", "log_softmax", "max", "min",
                                          "var", "std"]), a) if a else None
        if kind == 15:                                  # broadcasting a vector
            a = self.choose(pred=lambda t: t.ndim == 1)
            b = self.choose(pred=lambda t: t.ndim == 1)
            if a is None or b is None:
                return None
            col = self.index(a, column=True)
            return self.binary(pick(src, ["+", "*", "-"]), col, b)
        if kind == 16:                                  # stable forms, written naively
            a = self.choose(room=4)
            if a is None:
                return None
            form = src.integer(0, 3)
            a = self.fix("bounded", a)
            if a is None:
                return None
            if form == 0:       # log(1 + exp(a)) (softplus)
                e = self.unary("exp", a)
                one_plus = self.binary("+", self.number(1), e) if e is not None else None
                return self.unary("log", one_plus) if one_plus is not None else None
            if form == 1:       # 1 / (1 + exp(-a)) (sigmoid)
                e = self.unary("exp", self.neg(a))
                den = self.binary("+", self.number(1), e) if e is not None else None
                return self.binary("/", self.number(1), den) if den is not None else None
            if form == 2:       # exp(a) - 1 (expm1)
                e = self.unary("exp", a)
                return self.binary("-", e, self.number(1)) if e is not None else None
            e = self.fix("positive", a)     # log(1 + a) (log1p)
            one_plus = self.binary("+", self.number(1), e) if e is not None else None
            return self.unary("log", one_plus) if one_plus is not None else None
        # kind 17: constants in expressions
        a = self.choose()
        if a is None:
            return None
        c = self.constant_like(a)
        return self.binary(pick(src, ["+", "*", "-"]), a, c) if c is not None else None

    def elementwise(self, names: list) -> Term | None:
        name = pick(self.src, names)
        a = self.choose(room=3)
        if a is None:
            return None
        if not FUNCTIONS[name][0](a.lo, a.hi):
            a = self.fix(NEEDS[name], a)
        return self.unary(name, a) if a is not None else None

    def more(self) -> Term | None:
        """Issue 16's elementwise functions, logaddexp, clip, where, cumsum
        and revcumsum, triu and tril, norm with ord= and axis=."""
        src = self.src
        which = src.integer(0, 7)
        if which >= 6:   # with the piecewise-constant ones, rare among 27 names
            return self.elementwise(list(MORE_FUNCTIONS) + ["relu", "step", "sign"])
        a = self.choose(room=3, pred=lambda t: which not in (2, 3, 5) or t.ndim >= 1)
        if a is None or (which == 3 and a.ndim != 2):
            return None
        if which == 0:
            b = self.partner(a, room=3)
            shape = broadcast(a.shape, b.shape) if b is not None else None
            if shape is None:
                return None
            return self.term(self.call("logaddexp", [a.text, b.text]), ATOM, shape,
                             (max(a.lo, b.lo), max(a.hi, b.hi) + math.log(2)), [a, b],
                             lambda env, x=a.ref, y=b.ref: np.logaddexp(x(env), y(env)))
        if which == 1:
            lo = pick(src, [-1.0, -0.5, 0.0])
            hi = lo + pick(src, [0.5, 1.0, 2.0])
            bounds = [self.number(v) if v >= 0 else self.neg(self.number(-v)) for v in (lo, hi)]
            squeeze = lambda v: min(max(v, lo), hi)  # noqa: E731
            return self.term(self.call("clip", [a.text] + [t.text for t in bounds]), ATOM,
                             a.shape, (squeeze(a.lo), squeeze(a.hi)), [a],
                             lambda env, x=a.ref, lo=lo, hi=hi: np.clip(x(env), lo, hi),
                             flat=True)
        if which == 2:
            name, axis = pick(src, ["cumsum", "revcumsum"]), src.integer(0, a.ndim - 1)
            n = self.size(a.shape[axis])
            keywords = {"axis": axis} if a.ndim == 2 or src.chance(0.5) else {}
            return self.term(self.call(name, [a.text], **keywords), ATOM, a.shape,
                             (min(a.lo, n * a.lo), max(a.hi, n * a.hi)), [a],
                             lambda env, x=a.ref, k=axis, r=name == "revcumsum":
                             np.flip(np.cumsum(np.flip(x(env), k), k), k) if r
                             else np.cumsum(x(env), axis=k))
        if which == 3:
            name, k = pick(src, ["triu", "tril"]), pick(src, [0, 0, 1, -1])
            return self.term(self.call(name, [a.text], **({"k": k} if k else {})), ATOM,
                             a.shape, (min(a.lo, 0.0), max(a.hi, 0.0)), [a],
                             lambda env, x=a.ref, k=k, f=getattr(np, name): f(x(env), k),
                             flat=True)
        if which == 4:
            return self.where(a)
        return self.norm_keywords(a)

    def where(self, a: Term) -> Term | None:
        """where(x op y, a, b) with x and y of no variable in common."""
        b = self.partner(a, room=3)
        shape = broadcast(a.shape, b.shape) if b is not None else None
        x = self.choose(pred=lambda t: shape is not None and broadcast(t.shape, shape) == shape)
        if shape is None or x is None:
            return None
        y = self.partner(x, ok=lambda p, q: not p.vars & q.vars) if self.src.chance(0.5) \
            else self.number(pick(self.src, [0, 0.5]))
        if y is None or y.vars & x.vars or broadcast(broadcast(x.shape, y.shape), shape) != shape:
            return None
        op = pick(self.src, list(COMPARE))
        cond = self.wrap(x, ADD) + self.sep(op) + self.wrap(y, ADD)
        return self.term(self.call("where", [cond, a.text, b.text]), ATOM, shape,
                         (min(a.lo, b.lo), max(a.hi, b.hi)), [a, b, x, y],
                         lambda env, c=COMPARE[op], x=x.ref, y=y.ref, a=a.ref, b=b.ref:
                         np.where(c(x(env), y(env)), a(env), b(env)), flat=True)

    def norm_keywords(self, a: Term) -> Term | None:
        """norm(x, ord=1|2), norm(X, ord='fro'), norm(X, axis=k) (a row or column of
        X bounded away from 0), norm(X, ord=1, axis=k)."""
        src = self.src
        if a.ndim == 1 or src.chance(0.3):
            order = pick(src, [1, 2]) if a.ndim == 1 else "'fro'"
            whole = self.norm("norm1" if order == 1 else "norm", a)
            if whole is None:
                return None
            text = self.call("norm", [a.text], ord=order)
            return Term(text, ATOM, (), whole.lo, whole.hi, whole.depth, whole.ref, whole.vars,
                        whole.flat)
        axis, order = src.integer(0, 1), pick(src, [1, 2])
        if order == 2 and not a.away_from_zero():
            a = self.fix("positive", a)
            if a is None:
                return None
        n = self.size(a.shape[axis])
        small, big = _abs_interval(a.lo, a.hi)
        scale = n if order == 1 else math.sqrt(n)
        keywords = {"ord": order, "axis": axis} if order == 1 or src.chance(0.5) else {"axis": axis}
        return self.term(self.call("norm", [a.text], **keywords), ATOM, a.shape[:axis] +
                         a.shape[axis + 1:], (scale * small, scale * big), [a],
                         lambda env, x=a.ref, k=axis, o=order:
                         np.sum(np.abs(x(env)), axis=k) if o == 1
                         else np.sqrt(np.sum(np.square(x(env)), axis=k)))

    def square_term(self) -> Term | None:
        """A square matrix term: one from the pool, else outer(v, v) of a vector."""
        a = self.choose(room=4, pred=lambda t: t.square)
        if a is not None:
            return a
        v = self.choose(room=5, pred=lambda t: t.ndim == 1)
        return self.outer(v, v) if v is not None else None

    def orient(self, r: Term) -> Term | None:
        """A vector r against a square matrix as NumPy broadcasts it: bare (a
        row: it varies along the columns), r[None, :] or r[:, None]."""
        if r is None or r.ndim != 1:
            return r
        how = self.src.integer(0, 2)
        return r if how == 0 else self.index(r, column=how == 2)

    def oriented(self) -> Term | None:
        """A square A against a reduction of itself or a vector, in every
        broadcast orientation: A ± r, exp(A − logsumexp(A, axis)),
        exp(A) / sum(exp(A), axis), v * eye(n), diag(v) @ A, A @ diag(v) (a
        rule that looks at shapes, not axes, is wrong on these)."""
        src = self.src
        a = self.square_term()
        if a is None:
            return None
        form = src.integer(0, 4)
        if form == 0:                                   # A op reduce(A, axis)
            name = pick(src, ["sum", "mean", "logsumexp"])
            r = self.orient(self.reduce(name, a, along=src.chance(0.7)))
            op = pick(src, ["+", "-", "*", "/"])
            if op == "/" and r is not None and not r.away_from_zero():
                r = self.fix("positive", r)
            return self.binary(op, a, r)
        a = self.fix("bounded", a)
        if a is None:
            return None
        if form == 1:                                   # exp(A − logsumexp(A, axis))
            r = self.orient(self.reduce("logsumexp", a, along=src.chance(0.8)))
            return self.unary("exp", self.binary("-", a, r))
        if form == 2:                                   # exp(A) / sum(exp(A), axis)
            e = self.unary("exp", a)
            return self.binary("/", e, self.orient(self.reduce("sum", e, along=src.chance(0.8))))
        n = a.shape[0]
        v = self.choose(pred=lambda t: t.ndim == 1 and t.shape[0] == n) or \
            self.reduce("sum", a)
        if form == 3:                                   # v * eye(n), oriented
            return self.binary("*", self.orient(v), self.constant_array("eye", (n, n)))
        d = self.diag(v if v.ndim == 1 else None)       # diag(v) @ A or A @ diag(v)
        return self.matmul(d, a) if src.chance(0.5) else self.matmul(a, d)

    def scalarize(self, t: Term) -> Term:
        """A scalar function of t (at most MAX_DEPTH deep if t is 3 deep)."""
        for _ in range(6):
            if t.ndim == 0 or t.depth >= self.max_depth - 1:
                break
            kind = self.src.integer(0, 5)
            out = None
            if kind == 0:
                out = self.term(self.call("sum", [t.text]), ATOM, (),
                                (t.lo * self.count(t), t.hi * self.count(t)), [t],
                                lambda env, x=t.ref: np.sum(x(env)))
            elif kind == 1:
                out = self.reduce(pick(self.src, ["sum", "mean", "logsumexp"]), t)
            elif kind == 2:
                out = self.norm(pick(self.src, ["norm", "norm1"]), t)
            elif kind == 3 and t.square:
                out = self.matrix_function("trace", t)
            elif kind == 4 and t.ndim == 1:
                out = self.matmul(t, t)
            elif kind == 5:
                sq = self.binary("**", t, self.number(2))
                out = self.term(self.call("sum", [sq.text]), ATOM, (),
                                (sq.lo * self.count(t), sq.hi * self.count(t)), [sq],
                                lambda env, x=sq.ref: np.sum(x(env))) if sq else None
            if out is not None and out.depth <= self.max_depth:
                t = out
        if t.ndim == 0:
            return t
        # always possible: the mean (its bounds are those of t)
        return self.term(self.call("mean", [t.text]), ATOM, (), (t.lo, t.hi), [t],
                         lambda env, x=t.ref: np.mean(x(env)))

    def count(self, t: Term) -> int:
        return math.prod(self.size(d) for d in t.shape)

    # -------------------------------------------------------- the problem
    def declare(self):
        src = self.src
        order = list(DIM_NAMES)
        values = [3, 2, 4, 5]
        self.sizes = {}
        for name in order:
            self.sizes[name] = values.pop(src.integer(0, len(values) - 1))
        nvars = src.integer(1, 5)
        names = list(VARIABLE_NAMES)
        self.variables: list[Variable] = []
        for _ in range(nvars):
            name = names.pop(src.integer(0, min(len(names) - 1, 14 if not src.chance(0.1)
                                                  else len(names) - 1)))
            ndim = pick(src, [2, 1, 0])
            dims = []
            for _ in range(ndim):
                dims.append(dim_of(pick(src, list(DIM_NAMES) + (["1", "2"] if src.chance(0.1)
                                                                   else []))))
            kind, structure = "general", ""
            if ndim == 2 and src.chance(0.25) and dims[0][1]:
                dims[1] = dims[0]
                kind = structure = pick(src, ["spd", "symmetric"])
            elif ndim == 2 and src.chance(0.2):
                dims[1] = dims[0]                       # a general square matrix
            elif src.chance(0.3):
                kind = "positive"
            self.variables.append(Variable(name, tuple(dims), kind, structure))
        self.declared_dims = {n for v in self.variables for d in v.shape for n in d[1]}

    def variable_term(self, v: Variable) -> Term:
        if v.kind == "positive":
            lo, hi = 0.5, 1.5
        elif v.kind == "spd":
            lo, hi = -1.0, 2.0
        else:
            lo, hi = -1.0, 1.0
        sv = None
        if v.kind == "spd":
            sv = (1.0, 1.0 + self.size(v.shape[0]))
        return Term(v.name, ATOM, v.shape, lo, hi, 0, lambda env, n=v.name: env[n],
                    frozenset([v.name]), sv=sv, spd=v.kind == "spd")

    def declarations(self) -> list[str]:
        src, times = self.src, self.style["times"]
        lines, k = [], 0
        while k < len(self.variables):
            v = self.variables[k]
            group = [v]
            while k + len(group) < len(self.variables) and src.chance(0.3):
                w = self.variables[k + len(group)]
                if (w.shape, w.structure) != (v.shape, v.structure):
                    break
                group.append(w)
            shape = shape_text(v.shape).replace(" x ", f" {times} ")
            decl = ", ".join(w.name for w in group) + ": " + shape
            if v.structure:
                decl += " " + v.structure
            lines.append(decl)
            k += len(group)
        return lines

    def build(self) -> GeneratedProblem:
        src = self.src
        self.style = {"compact": src.chance(0.15), "prime": src.chance(0.2),
                      "newlines": src.chance(0.2),
                      "times": pick(src, ["x", "x", "×", "*"]),
                      "semicolons": src.chance(0.15), "comments": src.chance(0.2)}
        self.declare()
        seed = src.integer(0, 2 ** 31 - 1)
        # the inputs the problem is checked at (norm looks at its argument there)
        self.env = GeneratedProblem("", dict(self.sizes), list(self.variables), (),
                                    lambda env: 0.0, seed).inputs()
        self.pool = [self.variable_term(v) for v in self.variables]
        self.depths: list[int] = []
        statements: list[str] = []
        taken = {v.name for v in self.variables} | set(DIM_NAMES)
        nsteps = src.integer(2, self.max_steps)
        last = None
        for _ in range(nsteps):
            for _attempt in range(3):
                t = self.step()
                if t is not None and t.depth <= self.max_depth:
                    break
            else:
                continue
            last = t
            self.depths.append(t.depth)
            if src.chance(0.3):
                free = [n for n in INTERMEDIATE_NAMES if n not in taken]
                name = pick(src, free)
                taken.add(name)
                statements.append(f"{name} = {t.text}")
                t = Term(name, ATOM, t.shape, t.lo, t.hi, 0, t.ref, t.vars, t.flat, t.sv,
                         t.spd)
                last = t
            self.pool.append(t)
        out = last if last is not None and src.chance(0.8) else pick(src, self.pool)
        if out.depth > self.max_depth - 3:
            # name it, so that the function's own statement stays shallow
            free = [n for n in INTERMEDIATE_NAMES if n not in taken]
            name = pick(src, free)
            taken.add(name)
            statements.append(f"{name} = {out.text}")
            out = Term(name, ATOM, out.shape, out.lo, out.hi, 0, out.ref, out.vars, out.flat,
                       out.sv, out.spd)
            self.pool.append(out)
        if src.chance(0.85) or math.prod(self.size(d) for d in out.shape) > 60 or \
                _unused_scalar_last(statements, self.pool, out):
            out = self.scalarize(out)
            # more of the terms built: a sum (or product) of scalar parts
            for _ in range(src.integer(0, 2)):
                other = self.scalarize(self.choose(room=2) or out)
                op = pick(src, ["+", "-", "*"])
                combined = self.binary(op, out, other)
                if combined is not None and combined.depth <= self.max_depth:
                    out = combined
        name = pick(src, [n for n in OUTPUT_NAMES if n not in taken])
        bare = False
        if out.text in [s.split(" = ")[0] for s in statements] and src.chance(0.5):
            statements.append(out.text)                 # a bare name as the function
            name, bare = "f", True
        elif src.chance(0.3):
            statements.append(out.text)                 # a bare expression, named f
            name, bare = "f", True
        else:
            statements.append(f"{name} = {out.text}")
        wrt = None
        if not bare and src.chance(0.4):                # a bare expression is the last line
            chosen = [v.name for v in self.variables if src.chance(0.7)] or \
                [self.variables[0].name]
            if src.chance(0.3):
                chosen.reverse()
            wrt = tuple(chosen)
        lines = self.declarations() + statements + ([f"wrt {', '.join(wrt)}"] if wrt else [])
        if self.style["comments"]:
            lines = ["# generated problem"] + [
                line + ("  # note: a comment with \"\"\" and 'quotes'" if i % 2 and
                        "\n" not in line else "") for i, line in enumerate(lines)]
        joiner = "; " if self.style["semicolons"] and not self.style["comments"] else "\n"
        text = joiner.join(lines) + "\n"
        final = out
        depth = max([out.depth] + self.depths)
        return GeneratedProblem(text, dict(self.sizes), list(self.variables), out.shape,
                                lambda env, f=final.ref: f(env), seed, wrt, depth,
                                (out.lo, out.hi))


def build_problem(source, max_depth: int = MAX_DEPTH, max_steps: int = 12) -> GeneratedProblem:
    return Builder(source, max_depth, max_steps).build()


def problems(max_depth: int = MAX_DEPTH, max_steps: int = 12):
    """A Hypothesis strategy of `GeneratedProblem`s."""
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw):
        return build_problem(HypothesisSource(draw), max_depth, max_steps)

    return strategy()


# -------------------------------------------------------- LaTeX hygiene ---

def assert_balanced_latex(latex: str) -> None:
    """Non-empty; braces balanced (ignoring \\{ \\}); every \\left closed by
    a \\right inside the same brace group; \\begin/\\end paired."""
    assert latex.strip(), "empty LaTeX"
    text = re.sub(r"\\[{}]", "", latex)
    stack: list[str] = []
    for token in re.findall(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|[{}]", text):
        if token in ("{", "\\left"):
            stack.append(token)
        else:
            want = "{" if token == "}" else "\\left"
            assert stack and stack[-1] == want, f"unbalanced {token!r} in {latex!r}"
            stack.pop()
    assert not stack, f"unclosed {stack[-1]!r} in {latex!r}"
    assert re.findall(r"\\begin\{(\w+)\}", latex) == re.findall(r"\\end\{(\w+)\}", latex)


# ------------------------------------------------------- the whole check ---

def program_body(g) -> list[str]:
    """The lines of str(g) after its header, each gradient's line under the
    name the generated code gives it (`∂f/∂W = ...` read as `dW = ...`): a
    problem body again (an adjoint's name, δt1, is an identifier)."""
    from matcalc.targets.text import result_names
    shown = result_names(g.program, g.problem)
    code_name = {shown[name]: name for _, name in g.program.gradients}
    return [f"{code_name.get(lhs, lhs)} = {rhs}" for lhs, _, rhs in
            (line.partition(" = ") for line in str(g).splitlines()[1:])]


def printed_seed(g) -> str:
    """The name str(g) gives the upstream gradient of an array-valued function."""
    from matcalc.targets.text import result_names
    return result_names(g.program, g.problem)[g.seed.name]


def run_program(problem, values: dict) -> dict:
    """Evaluate a problem's intermediates in order, each line on its own (an
    intermediate a line uses is read from the values computed so far, never
    expanded), by matcalc.targets.evaluation."""
    from matcalc.ir.expr import apply, postorder, var
    from matcalc.ops import OPS
    from matcalc.targets.evaluation import evaluate

    names = {n: var(n.param("name"), n.shape) for n in problem.intermediates.values()}
    env = dict(values)
    for name, node in problem.intermediates.items():
        line = dict(names)  # the line with each intermediate it uses as a variable
        for n in postorder([node.args[0]], line):
            args = tuple(line[a] for a in n.args)
            line[n] = n if args == n.args else apply(OPS[n.op], args, n.params)
        env[name] = evaluate(line[node.args[0]], env)
    return env


PROPERTIES = ("round trip", "latex", "codegen", "numeric", "second order")

# Steps of the central differences of the gradient that check Hessian-vector
# products: a second, smaller step tells a kink of relu, abs, maximum, ...
# crossed by the first (the gradient jumps there) from a wrong product.
HVP_STEPS = (1e-5, 2e-6)


def apply_linear(array, v, out_shape: tuple) -> np.ndarray:
    """A generated Hessian or Jacobian applied to the direction v: its shape
    is always the result's then v's (a Kronecker form comes unstacked), so
    it acts by contracting v's axes."""
    array, v = np.asarray(array, dtype=float), np.asarray(v, dtype=float)
    assert array.shape == tuple(out_shape) + v.shape, (array.shape, out_shape, v.shape)
    return np.tensordot(array, v, axes=v.ndim)


def relative_error(got, want, floor: float) -> float:
    """max |got − want| relative to the larger of the two, or to `floor`."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = max(float(np.max(np.abs(want), initial=0.0)),
                float(np.max(np.abs(got), initial=0.0)), floor)
    return float(np.max(np.abs(got - want), initial=0.0)) / scale


def hvp_error(module, inputs: dict, wrt, direction: dict, step: float) -> float:
    """max |H v − (g(x + h v) − g(x − h v)) / 2h| over the variables, relative
    to the larger of the two, floored at the rounding noise of the gradient,
    taken as 1e-9 of the larger of |f|, |g| and 1 (a gradient that is a small
    difference of large terms is only that accurate), divided by h."""
    def grads(sign):
        moved = {**inputs, **{n: inputs[n] + sign * step * direction[n] for n in wrt}}
        return module.value_and_grad(**moved)[1]
    got = module.hvp(direction if len(wrt) > 1 else direction[wrt[0]], **inputs)
    got = got if len(wrt) > 1 else {wrt[0]: got}
    value, here = module.value_and_grad(**inputs)
    up, down = grads(1), grads(-1)
    worst = 0.0
    for n in wrt:
        fd = (np.asarray(up[n], dtype=float) - np.asarray(down[n], dtype=float)) / (2 * step)
        hv = np.broadcast_to(np.asarray(got[n], dtype=float), fd.shape)
        noise = 1e-9 * max(1.0, abs(float(value)),
                           float(np.max(np.abs(here[n]), initial=0.0))) / step
        scale = max(float(np.max(np.abs(fd), initial=0.0)),
                    float(np.max(np.abs(hv), initial=0.0)), noise)
        worst = max(worst, float(np.max(np.abs(hv - fd), initial=0.0)) / scale)
    return worst


def check_generated(gp: GeneratedProblem, groups=PROPERTIES, tol: float = 1e-6) -> None:
    """The properties of one generated problem in `groups` (round trip,
    latex, codegen, numeric). Raises AssertionError listing each property
    that fails, with the problem text and the inputs' seed."""
    failures = problem_failures(gp, groups, tol)
    if failures:
        raise AssertionError("\n\n".join(failures) + f"\n--- problem ---\n{gp.text}"
                             f"--- dims {gp.dims()}, input seed {gp.seed}")


def problem_failures(gp: GeneratedProblem, groups=PROPERTIES,
                     tol: float = 1e-6) -> list[str]:
    """The properties of `gp` (in `groups`) that fail, one message each (the
    first line names the property). Parsing, deriving and generating code
    must succeed for every group."""
    import traceback

    import matcalc
    from matcalc.targets.numpy import load
    from matcalc.ir.expr import Apply, postorder
    from matcalc.frontend.parser import parse_expr
    from matcalc.targets.latex import to_latex
    from matcalc.targets.text import declarations

    failures: list[str] = []

    def prop(name: str, fn, group: str | None = None) -> object:
        """Run one property; record an assertion or an unexpected exception."""
        if group is not None and group not in groups:
            return None
        try:
            return fn()
        except AssertionError as err:
            failures.append(f"{name}: {err}")
        except Exception as err:      # noqa: BLE001 - any exception is a finding
            failures.append(f"{name}: raised {type(err).__name__}: {err}\n"
                            + "".join(traceback.format_exception(err)[-6:]))
        return None

    text = gp.text
    p = prop("parse", lambda: matcalc.parse(text))
    if p is None:
        return failures

    def problem_round_trip():
        printed = str(p)
        again = matcalc.parse(printed)
        assert again.output is p.output, f"reparsed as\n{again}"
        assert again.wrt == p.wrt
    prop("str(problem) round trip", problem_round_trip, "round trip")

    g = prop("grad", lambda: matcalc.grad(p))
    if g is None:
        return failures
    scope = dict(p.scope())
    if g.seed is not None:
        scope[g.seed.name] = g.seed

    def gradient_round_trip():
        for name, e in g:
            assert e.shape == p.variables[name].shape, f"d{name} has shape {e.shape}"
            printed = str(e)
            back = parse_expr(printed, scope)
            assert back is e, f"d{name} = {printed!r} parses back as {str(back)!r}"
    prop("str(gradient) round trip", gradient_round_trip, "round trip")

    def function_round_trip():
        for node in postorder([p.output]):
            if isinstance(node, Apply):
                printed = str(node)
                back = parse_expr(printed, scope)
                assert back is node, f"{printed!r} parses back as {str(back)!r}"
    prop("str(subexpression) round trip", function_round_trip, "round trip")

    def program_round_trip():
        # the gradient program (str(g)) is itself a valid problem body: read
        # back after the declarations, its gradient lines compute the same
        # values as the generated module (checked in module_value)
        program = program_body(g)
        names = [line.split(" = ", 1)[0] for line in program]
        assert len(set(names)) == len(names), f"a name is bound twice in\n{g}"
        seed = []
        if g.seed is not None:
            shape = g.seed.shape
            if not all(str(d).isidentifier() or str(d).isdigit() for d in shape):
                return None
            seed = [f"{printed_seed(g)}: " + (" x ".join(map(str, shape)) or "scalar")]
        return matcalc.parse("\n".join(declarations(p) + seed + program) + "\n")
    reparsed = prop("str(gradient program) parses", program_round_trip, "round trip")

    def latex():
        assert_balanced_latex(g.latex())
        assert_balanced_latex(p._repr_latex_())
        for _, e in g:
            assert_balanced_latex(to_latex(e))
    prop("LaTeX", latex, "latex")

    if not {"codegen", "numeric", "round trip", "second order"} & set(groups):
        return failures
    source = prop("codegen", lambda: matcalc.codegen(p))
    if source is None:
        return failures

    def deterministic():
        assert matcalc.codegen(matcalc.parse(text)) == source, "a second codegen differs"
    prop("codegen deterministic", deterministic, "codegen")

    shapes = {v.name: tuple(gp.size(d) for d in v.shape) for v in gp.variables}
    inputs = gp.inputs()

    def module_value():
        module = load(source, p.output_name)
        dout = [] if not gp.output_shape else \
            [np.ones(tuple(gp.size(d) for d in gp.output_shape))]
        value, grads = module.value_and_grad(*dout, **inputs)
        want = np.asarray(gp.reference(inputs), dtype=float)
        got = np.asarray(value, dtype=float)
        assert got.shape == want.shape, f"value has shape {got.shape}, expected {want.shape}"
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        assert np.all(np.abs(got - want) <= 1e-9 * scale), \
            f"value {got} but the NumPy reference gives {want}"
        for name in p.wrt:
            gr = np.asarray(grads[name])
            assert gr.shape == shapes[name], f"d{name} has shape {gr.shape}, not {shapes[name]}"
            assert np.all(np.isfinite(gr)), f"d{name} is not finite: {gr}"
        return grads, dout
    computed = prop("generated value against the NumPy reference", module_value,
                    "numeric" if "numeric" in groups else "round trip")

    def plain_evaluation():
        # matcalc.checks.reference reads the text as written: it must agree with
        # this strategy's own naive NumPy formulas
        from matcalc.checks.reference import evaluate
        want = np.asarray(gp.reference(inputs), dtype=float)
        got = np.asarray(evaluate(p, inputs, gp.dims()), dtype=float)
        scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
        assert got.shape == want.shape and np.all(np.abs(got - want) <= 1e-9 * scale), \
            f"matcalc.checks.reference gives {got}, the strategy's reference {want}"
    prop("matcalc.checks.reference against the NumPy reference", plain_evaluation, "numeric")

    def program_values():
        grads, dout = computed
        values = {**inputs, **gp.dims()}
        if g.seed is not None:
            values[printed_seed(g)] = dout[0]
        env = run_program(reparsed, values)
        for w, name in g.program.gradients:
            got = np.asarray(env[name], dtype=float)
            want = np.asarray(grads[w], dtype=float)
            scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
            assert got.shape == want.shape and np.all(np.abs(got - want) <= 1e-9 * scale), \
                f"{name} from str(g) is {got}, the module's is {want}"
    if reparsed is not None and computed is not None:
        prop("str(gradient program) computes the gradients", program_values, "round trip")

    def finite_differences():
        result = matcalc.check(p, dims=gp.dims(), inputs=inputs, seed=gp.seed, tol=tol)
        assert result.ok, f"{result}\n--- gradients ---\n{g}"
    prop("gradients against central differences", finite_differences, "numeric")

    def second_order():
        module = matcalc.compile(p, hvp=True)
        rng = np.random.default_rng(gp.seed + 1)
        direction = {}
        for v in gp.variables:
            if v.name in p.wrt:
                r = rng.standard_normal(shapes[v.name])
                direction[v.name] = (r + r.T) / 2 if v.structure else \
                    (r if r.ndim else float(r))
        errors = []
        for step in HVP_STEPS:
            errors.append(hvp_error(module, inputs, p.wrt, direction, step))
            if errors[-1] <= 1e-5:
                break
        else:
            raise AssertionError(f"hvp differs from central differences of the gradient "
                                 f"by {errors} (steps {HVP_STEPS})\n--- hvp ---\n"
                                 f"{matcalc.hvp(p)}")
        return direction

    def hessians(direction):
        # ∂²f/∂x² and ∂²f/∂x∂y (x, y the first two variables), in their
        # closed forms, applied to v_x or v_y are the x part of hvp with v
        # zero but for that variable (hvp itself is checked above); the
        # Jacobian of a scalar function applied to v is <gradient, v>
        hvp_module = matcalc.compile(p, hvp=True, jacobian=True)
        value, grads = hvp_module.value_and_grad(**inputs)
        floor = 1e-7 * max(1.0, abs(float(value)),
                           *(float(np.max(np.abs(g), initial=0.0)) for g in grads.values()))
        x = p.wrt[0]
        for y in dict.fromkeys(p.wrt[:2]):
            pair = x if y == x else f"{x},{y}"
            form = matcalc.hessian(p, pair).entries[0].form
            only = {n: np.zeros_like(np.asarray(d)) if n != y else d
                    for n, d in direction.items()}
            hv = hvp_module.hvp(only if len(p.wrt) > 1 else only[x], **inputs)
            want = hv[x] if len(p.wrt) > 1 else hv
            H = matcalc.compile(p, hessian=pair).hessian(**inputs)
            got = apply_linear(H, direction[y], shapes[x])
            error = relative_error(got, np.broadcast_to(want, shapes[x]), floor)
            assert error <= 1e-6, f"H_{pair} ({form}) applied to v differs from hvp by {error}"
        J = hvp_module.jacobian(**inputs)
        J = J if len(p.wrt) > 1 else {x: J}
        for n in p.wrt:
            form = matcalc.jacobian(p, n).entries[0].form
            got = apply_linear(J[n], direction[n], ())
            want = np.sum(np.asarray(grads[n], dtype=float) * direction[n])
            error = relative_error(got, want, floor)
            assert error <= 1e-6, f"J_{n} ({form}) applied to v differs from <d{n}, v> by {error}"

    def jacobians():
        # J_x applied to v against central differences of the function
        module = matcalc.compile(p, jacobian=True)
        J = module.jacobian(**inputs)
        J = J if len(p.wrt) > 1 else {p.wrt[0]: J}
        rng = np.random.default_rng(gp.seed + 2)

        def value(moved):
            return np.asarray(module.forward(*(moved[n] for n in module.INPUTS))[0], float)
        for x in p.wrt:
            r = rng.standard_normal(shapes[x])
            v = (r + r.T) / 2 if p.variables[x].structure else (r if r.ndim else float(r))
            form = matcalc.jacobian(p, x).entries[0].form
            got = apply_linear(J[x], v, value(inputs).shape)
            errors = []
            for step in HVP_STEPS:
                up, down = ({**inputs, x: inputs[x] + sign * step * v} for sign in (1, -1))
                fd = (value(up) - value(down)) / (2 * step)
                noise = 1e-9 * max(1.0, float(np.max(np.abs(value(inputs))))) / step
                scale = max(float(np.max(np.abs(fd), initial=0.0)), noise)
                errors.append(float(np.max(np.abs(got - fd), initial=0.0)) / scale)
                if errors[-1] <= 1e-5:
                    break
            else:
                raise AssertionError(f"J_{x} ({form}) applied to v differs from central "
                                     f"differences by {errors}")

    if not gp.output_shape:
        direction = prop("hvp against central differences of the gradient", second_order,
                         "second order")
        if direction is not None:
            prop("Hessian applied to v against hvp", lambda: hessians(direction),
                 "second order")
    else:
        prop("Jacobian applied to v against central differences", jacobians, "second order")
    return failures


# ------------------------------------------------------------- long runs ---

def main(argv=None) -> int:
    """`python tests/strategies.py --problems 20000`: every property of that
    many generated problems (RandomSource seeds start, start + 1, ...),
    without stopping at the first failure; prints one line per failing
    problem and a summary `problems tried: N, mismatches: M`."""
    import argparse
    import time
    import warnings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--problems", type=int, default=20000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--show", type=int, default=3, help="failures shown in full")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    began, failing, shown, properties = time.time(), 0, 0, 0
    for seed in range(args.start, args.start + args.problems):
        gp = build_problem(RandomSource(seed))
        failures = problem_failures(gp)
        if failures:
            failing += 1
            print(f"seed {seed}: " + "; ".join(f.splitlines()[0][:100] for f in failures),
                  flush=True)
            if shown < args.show:
                shown += 1
                print("\n".join(failures) + f"\n--- problem ---\n{gp.text}", flush=True)
    elapsed = time.time() - began
    print(f"problems tried: {args.problems}, mismatches: {failing} "
          f"(seeds {args.start}..{args.start + args.problems - 1}, {elapsed:.0f} s)")
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
