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

from dataclasses import dataclass, field
from typing import Callable

import sympy

from . import precedence as P
from .errors import ShapeError
from .expr import Apply, Const, Expr, Var, apply, const, is_const
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
    numerical check which inputs the function needs ('positive', 'spd').
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


OPS: dict[str, Op] = {}
ALIASES = {"tr": "trace"}


def _register(op: Op) -> Op:
    OPS[op.name] = op
    return op


def _is(node: Expr, *names: str) -> bool:
    return isinstance(node, Apply) and node.op in names


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


def add(*terms: Expr) -> Expr:
    """Elementwise sum with broadcasting; collects like terms (x + 2x = 3x)."""
    shape = broadcast(*(t.shape for t in terms))
    flat: list[Expr] = []
    for t in terms:
        flat.extend(t.args if _is(t, "add") else (t,))
    constant = sympy.Integer(0)
    coeffs: dict[Expr, sympy.Expr] = {}
    for t in flat:
        if is_zero(t):
            continue
        c, rest = _coefficient(t)
        if rest is None:
            constant += c
        else:
            coeffs[rest] = coeffs.get(rest, 0) + c
    out = [const(constant)] if constant != 0 else []
    out += [mul(const(c), rest) for rest, c in coeffs.items() if c != 0]
    if not out:
        return zeros(shape)
    node = out[0] if len(out) == 1 else apply(OPS["add"], tuple(out))
    if node.shape != shape:
        node = mul(ones(shape), node)
    return node


def mul(*factors: Expr) -> Expr:
    """Elementwise product with broadcasting; one leading scalar coefficient."""
    shape = broadcast(*(f.shape for f in factors))
    flat: list[Expr] = []
    for f in factors:
        flat.extend(f.args if _is(f, "mul") else (f,))
    for k, f in enumerate(flat):  # (a / b) * b = a
        if _is(f, "div") and f.args[1] in flat and \
                (not f.args[1].shape or f.args[0].shape == f.shape):
            flat.remove(f.args[1])
            flat[flat.index(f)] = f.args[0]
            return mul(*flat)
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
    if len(kept) < len(rest) and broadcast((), *(f.shape for f in kept)) != shape:
        kept.insert(0, ones(shape))
    if c == -1 and len(kept) == 1 and _is(kept[0], "add"):
        return add(*(neg(t) for t in kept[0].args))
    if c != 1 or not kept:
        kept.insert(0, const(c))
    return kept[0] if len(kept) == 1 else apply(OPS["mul"], tuple(kept))


def neg(x: Expr) -> Expr:
    return mul(const(-1), x)


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, neg(b))


def div(a: Expr, b: Expr) -> Expr:
    """Elementwise quotient; division by a constant is a coefficient."""
    if isinstance(b, Const):
        if b.value == 0:
            raise ShapeError("division by the constant 0")
        return mul(const(1 / b.value), a)
    shape = broadcast(a.shape, b.shape)
    if is_zero(a):
        return zeros(shape)
    if _is(a, "ones") and b.shape == shape:
        a = const(1)
    return apply(OPS["div"], (a, b))


def power(x: Expr, e: Expr) -> Expr:
    """Elementwise power `x ** e`."""
    if isinstance(e, Const):
        if e.value == 1:
            return x
        if e.value == 0:
            return ones(x.shape)
        if isinstance(x, Const):
            return const(x.value ** e.value)
    return apply(OPS["pow"], (x, e))


def matmul(a: Expr, b: Expr) -> Expr:
    """NumPy's `a @ b` for vectors and matrices."""
    if not a.shape or not b.shape:
        raise ShapeError("'@' needs vectors or matrices, not scalars; use '*'")
    shape = _matmul_shape([a.shape, b.shape], {})
    scale_a, a = _scaled_identity(a)
    scale_b, b = _scaled_identity(b)
    if scale_a is not None or scale_b is not None:
        scale = (1 if scale_a is None else scale_a) * (1 if scale_b is None else scale_b)
        if a is None and b is None:
            return mul(const(scale), eye(shape[0]))
        return mul(const(scale), b if a is None else a if b is None else matmul(a, b))
    if is_zero(a) or is_zero(b):
        return zeros(shape)
    return apply(OPS["matmul"], (a, b))


def _scaled_identity(x: Expr) -> tuple:
    """(c, None) for c * eye(n); (None, x) for anything else."""
    if _is(x, "eye"):
        return sympy.Integer(1), None
    if _is(x, "mul") and len(x.args) == 2 and isinstance(x.args[0], Const) \
            and _is(x.args[1], "eye"):
        return x.args[0].value, None
    return None, x


def transpose(x: Expr) -> Expr:
    """`x.T`: a no-op on scalars, vectors and symmetric matrices."""
    if x.ndim < 2 or (isinstance(x, Var) and x.structure) or _is(x, "eye"):
        return x
    if _is(x, "transpose"):
        return x.args[0]
    if _is(x, "zeros", "ones"):
        return apply(OPS[x.op], (), (("shape", x.shape[::-1]),))
    return apply(OPS["transpose"], (x,))


def reduce_sum(x: Expr, axis: int | None = None) -> Expr:
    """`sum(x, axis)`: over everything (axis None), rows (0) or columns (1)."""
    if axis is not None and -x.ndim <= axis < 0:
        axis += x.ndim
    if x.ndim == 1 and axis == 0:
        axis = None
    if not x.shape:
        if axis is not None:
            raise ShapeError(f"sum over axis {axis} of a scalar")
        return x
    if (_is(x, "col") and axis == 1) or (_is(x, "row") and axis == 0):
        return x.args[0]
    node = apply(OPS["sum"], (x,), (("axis", axis),))
    if is_zero(x):
        return zeros(node.shape)
    if _is(x, "ones"):
        count = sympy.Mul(*x.shape) if axis is None else x.shape[axis]
        return mul(const(count), ones(node.shape))
    return node


def mean(x: Expr, axis: int | None = None) -> Expr:
    """`mean(x, axis)` = sum(x, axis) / (number of terms)."""
    total = reduce_sum(x, axis)
    count = sympy.Mul(*x.shape) if axis is None or x.ndim == 1 else x.shape[axis % x.ndim]
    return mul(const(1 / sympy.sympify(count)), total)


def func(name: str, *args: Expr, **params) -> Expr:
    """Apply the table entry `name` (no algebra beyond the shape rule)."""
    return apply(OPS[name], tuple(args), tuple(sorted(params.items())))


def named(name: str, x: Expr) -> Expr:
    """The intermediate `name = x`."""
    return apply(OPS["name"], (x,), (("name", name),))


def shared_adjoint(g: Expr) -> Expr:
    """`g` kept whole where several rules use it (constants and symbolic
    arrays stay open, so they still fold and vanish)."""
    if not isinstance(g, Apply) or g.op in ("ones", "zeros", "eye", "adjoint", "name"):
        return g
    if g.op == "mul" and all(isinstance(a, Const) or _is(a, "ones") for a in g.args):
        return g
    return apply(OPS["adjoint"], (g,))


def col(v: Expr) -> Expr:
    """A vector as an n x 1 column: `v[:, None]`."""
    return apply(OPS["col"], (v,))


def row(v: Expr) -> Expr:
    """A vector as a 1 x n row: `v[None, :]`."""
    return apply(OPS["row"], (v,))


def outer(x: Expr, y: Expr) -> Expr:
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
    others = node.args[:i] + node.args[i + 1:]
    return unbroadcast(mul(g, *others), node.args[i].shape)


def _pow_vjp(g, node, i):
    x, e = node.args
    if i == 0:
        return unbroadcast(mul(g, e, power(x, sub(e, const(1)))), x.shape)
    return unbroadcast(mul(g, node, func("log", x)), e.shape)


def _div_vjp(g, node, i):
    a, b = node.args
    if i == 0:
        return unbroadcast(div(g, b), a.shape)
    return unbroadcast(neg(div(mul(g, node), b)), b.shape)


# ------------------------------------------------------------------ table ---

def _infix(symbol: str, prec: int, right_assoc: bool = False) -> Form:
    args = (prec + 1, prec) if right_assoc else (prec, prec + 1)
    return Form("{0}" + symbol + "{1}", prec, args)


_register(Op("add", _broadcast, lambda g, n, i: unbroadcast(g, n.args[i].shape),
             text=Form(" + ", P.ADD), latex=Form(" + ", P.ADD),
             numpy=Form(" + ", P.ADD), nargs=None))
_register(Op("mul", _broadcast, _mul_vjp,
             text=Form(" * ", P.MUL), latex=Form(r" \odot ", P.MUL),
             numpy=Form(" * ", P.MUL), nargs=None))
_register(Op("div", _broadcast, _div_vjp,
             text=_infix(" / ", P.MUL), latex=Form(r"\frac{{{0}}}{{{1}}}"),
             numpy=_infix(" / ", P.MUL), nargs=2))
_register(Op("pow", _broadcast, _pow_vjp,
             text=_infix(" ** ", P.POW, True),
             latex=Form("{0}^{{{1}}}", P.POW, (P.ATOM, P.LOWEST)),
             numpy=_infix(" ** ", P.POW, True), nargs=2))
# Products of matrices are parenthesised against elementwise products (both
# bind as tightly in Python), so `(A @ B) * C` never reads as `A @ (B * C)`.
_register(Op("matmul", _matmul_shape, _matmul_vjp,
             text=Form("{0} @ {1}", P.MUL, P.MUL + 1),
             latex=Form("{0} {1}", P.MUL, P.MUL + 1),
             numpy=Form("{0} @ {1}", P.MUL, P.MUL + 1), nargs=2))
_register(Op("transpose", _transpose_shape, lambda g, n, i: transpose(g),
             text=Form("{0}.T", P.POSTFIX, P.POSTFIX),
             latex=Form(r"{0}^\top", P.POSTFIX, P.ATOM),
             numpy=Form("{0}.T", P.POSTFIX, P.POSTFIX)))
# A user's named intermediate: the identity, kept as a node so the builders'
# algebra never dissolves it (Y = A @ W + b stays Y inside Y - T).
_register(Op("name", _same, lambda g, n, i: g,
             text=Form(lambda a, p: p["name"]), latex=Form(lambda a, p: p["name"]),
             numpy=Form(lambda a, p: p["name"])))
# The adjoint of a node that feeds several rules: the identity, kept as a node
# so the products built from it share it (dz3 in dw3 = dz3 a2 and db3 = dz3)
# instead of each flattening its factors.
_register(Op("adjoint", _same, lambda g, n, i: g, text=Form("{0}", P.LOWEST),
             latex=Form("{0}", P.LOWEST), numpy=Form("{0}", P.LOWEST)))
_register(Op("col", _col_shape, lambda g, n, i: reduce_sum(g, 1),
             text=Form("{0}[:, None]", P.POSTFIX, P.POSTFIX),
             latex=Form("{0}", P.ATOM, P.ATOM),
             numpy=Form("{0}[:, None]", P.POSTFIX, P.POSTFIX)))
_register(Op("row", _row_shape, lambda g, n, i: reduce_sum(g, 0),
             text=Form("{0}[None, :]", P.POSTFIX, P.POSTFIX),
             latex=Form(r"{0}^\top", P.POSTFIX, P.ATOM),
             numpy=Form("{0}[None, :]", P.POSTFIX, P.POSTFIX)))


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
             params=(("axis", None),)))
_register(Op("outer", _outer_shape,
             lambda g, n, i: matmul(g, n.args[1]) if i == 0 else matmul(transpose(g), n.args[0]),
             text=call("outer"), latex=Form(r"{0} {1}^\top", P.MUL, P.POSTFIX),
             numpy=call("np.outer"), nargs=2))


def _dims_form(name: str) -> Form:
    return Form(lambda a, p: f"{name}({', '.join(map(str, p['shape']))})")


def _numpy_dims(name: str) -> Form:
    return Form(lambda a, p: f"np.{name}(({', '.join(map(str, p['shape']))},))"
                if len(p["shape"]) == 1 else
                f"np.{name}(({', '.join(map(str, p['shape']))}))")


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
             numpy=Form(lambda a, p: f"np.eye({p['shape'][0]})"),
             nargs=0, dims=True))
_register(Op("trace", _square_to("trace", "scalar"),
             lambda g, n, i: mul(g, eye(n.args[0].shape[0])),
             text=call("trace"), latex=latex_call(r"\operatorname{tr}"),
             numpy=call("np.trace")))
_register(Op("det", _square_to("det", "scalar"),
             lambda g, n, i: mul(g, n, transpose(func("inv", n.args[0]))),
             text=call("det"), latex=latex_call(r"\det"),
             numpy=call("np.linalg.det"), domain="spd"))
_register(Op("logdet", _square_to("logdet", "scalar"),
             lambda g, n, i: mul(g, transpose(func("inv", n.args[0]))),
             text=call("logdet"), latex=latex_call(r"\log\det"),
             numpy=Form("np.linalg.slogdet({0})[1]"), domain="spd"))
_register(Op("inv", _square_to("inv", "matrix"),
             lambda g, n, i: neg(matmul(matmul(transpose(n), g), transpose(n))),
             text=call("inv"), latex=Form("{0}^{{-1}}", P.POSTFIX, P.ATOM),
             numpy=call("np.linalg.inv"), domain="spd"))


def elementwise(name: str, vjp: Callable, latex: str, numpy: str | Form,
                domain: str = "") -> Op:
    """Register an elementwise function; `vjp(g, x, y)` with y = f(x).

    `latex` and `numpy` are a command or function name (written as a call)
    or a template over the argument `{0}`.
    """
    rule = lambda g, n, i: vjp(g, n.args[0], n)  # noqa: E731
    if isinstance(numpy, str):
        numpy = Form(numpy) if "{0}" in numpy else call(numpy)
    return _register(Op(name, _same, rule, text=call(name),
                        latex=Form(latex) if "{0}" in latex else latex_call(latex),
                        numpy=numpy, domain=domain, elementwise=True))


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
            Form("np.exp(-np.logaddexp(0, -{0}))", P.ATOM, P.POW))
elementwise("relu", lambda g, x, y: mul(g, func("step", x)),
            r"\operatorname{relu}", "np.maximum({0}, 0)")
elementwise("step", _flat, r"\mathbf{{1}}\left[{0} > 0\right]", "({0} > 0)")
elementwise("softplus", lambda g, x, y: mul(g, func("sigmoid", x)),
            r"\operatorname{softplus}", "np.logaddexp(0, {0})")
elementwise("log1p", lambda g, x, y: div(g, add(const(1), x)),
            r"\log\left(1 + {0}\right)", "np.log1p", "positive")

# Operators written with symbols rather than called by name.
OPERATORS = frozenset({"add", "mul", "div", "pow", "matmul", "transpose", "col", "row",
                       "name", "adjoint"})

# Functions the language calls through a builder (with its algebra) rather
# than through `func`; `mean` is sugar and never appears in the graph.
BUILDERS: dict[str, Callable] = {"sum": reduce_sum, "mean": mean, "outer": outer}


def function_names() -> list[str]:
    """Every name the language accepts as a function."""
    return sorted((set(OPS) - OPERATORS) | set(BUILDERS) | set(ALIASES))


def rebuild(node: Expr, args: tuple) -> Expr:
    """`node` with new arguments, through the builders (so their algebra applies)."""
    if not isinstance(node, Apply) or args == node.args:
        return node
    builder = {"add": add, "mul": mul, "div": div, "pow": power, "matmul": matmul,
               "transpose": transpose, "outer": outer}.get(node.op)
    if builder is not None:
        return builder(*args)
    if node.op == "sum":
        return reduce_sum(args[0], node.param("axis"))
    return apply(OPS[node.op], args, node.params)
