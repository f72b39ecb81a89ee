"""The text as written, evaluated with plain NumPy: no rewriting, no algebra.

`evaluate(problem, values)` walks the Lark parse tree of the problem's
source and computes each statement with NumPy's own semantics (a bare
vector broadcasts along the last axis, `v[:, None]` is a column), each
function by its textbook formula (softmax as exp(x) / sum(exp(x)), sigmoid
as 1 / (1 + exp(-x))), never the stable forms the generated code uses.
`check` compares the generated function with it, so a rewrite that changes
the function is seen, not only a gradient that disagrees with its forward.

The textbook formulas overflow where the generated code does not (log of a
softmax at large logits) and lose digits where it keeps them: `value_error`
compares only where the reference is finite, and beyond its own rounding
error, measured against the same formulas in extended precision.
"""

from __future__ import annotations

import math

import numpy as np
from lark.exceptions import VisitError
from lark.visitors import Transformer_NonRecursive, v_args

from ..frontend.grammar import lalr


def _softmax(x, axis=None):
    e = np.exp(x)
    return e / np.sum(e, axis=axis, keepdims=True)


def _unkron_left(g, b):
    p, q = b.shape
    return np.einsum("ikjl,kl->ij", g.reshape(g.shape[0] // p, p, g.shape[1] // q, q), b)


def _unkron_right(g, a):
    m, n = a.shape
    return np.einsum("ikjl,ij->kl", g.reshape(m, g.shape[0] // m, n, g.shape[1] // n), a)


def _linalg(f):
    """A LAPACK routine in any precision: NumPy's take float64 at most, so
    extended precision goes through float64 (they are backward stable)."""
    def run(*args):
        dtype = np.result_type(*args)
        if dtype.itemsize <= 8:
            return f(*args)
        return np.asarray(f(*(np.asarray(a, np.float64) for a in args)), dtype)[()]
    return run


def _erf(x):
    """erf entry by entry by Python's math.erf (float64, whatever x's type)."""
    return np.vectorize(math.erf, otypes=[np.float64])(x)[()]


def _norm(x, ord=None, axis=None):
    """np.linalg.norm for the orders of the language, in x's own precision."""
    if ord == 1:
        return np.sum(np.abs(x), axis=axis)
    return np.sqrt(np.sum(np.square(x), axis=axis))


def _revcumsum(x, axis=0):
    return np.flip(np.cumsum(np.flip(x, axis), axis), axis)


# Each function of the language, as a person writes it in NumPy.
FUNCTIONS = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "sinh": np.sinh,
    "cosh": np.cosh, "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan,
    "log1p": np.log1p, "expm1": np.expm1, "square": np.square,
    "sigmoid": lambda x: 1 / (1 + np.exp(np.negative(x))),
    "relu": lambda x: np.maximum(x, 0),
    "softplus": lambda x: np.log(1 + np.exp(x)),
    "step": lambda x: np.heaviside(x, 0),
    "maximum": np.maximum, "minimum": np.minimum,
    "softmax": _softmax,
    "log_softmax": lambda x, axis=None: np.log(_softmax(x, axis)),
    "logsumexp": lambda x, axis=None, keepdims=False: np.log(np.sum(np.exp(x), axis=axis,
                                                                     keepdims=keepdims)),
    "sum": lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
    "mean": lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
    "max": np.max, "min": np.min, "var": np.var, "std": np.std,
    "trace": np.trace, "tr": np.trace,
    "det": _linalg(np.linalg.det),
    "logdet": _linalg(lambda a: np.log(np.abs(np.linalg.det(a)))),
    "inv": _linalg(np.linalg.inv), "solve": _linalg(np.linalg.solve), "diag": np.diag,
    "norm": _norm, "norm1": lambda x: np.sum(np.abs(x)),
    "kron": np.kron, "outer": np.outer,
    "unkron_left": _unkron_left, "unkron_right": _unkron_right,
    "silu": lambda x: x / (1 + np.exp(np.negative(x))),
    "gelu": lambda x: x * (1 + _erf(np.divide(x, np.sqrt(2)))) / 2,
    "elu": lambda x, alpha=1.0: np.where(np.greater(x, 0), x, alpha * (np.exp(x) - 1)),
    "leaky_relu": lambda x, negative_slope=0.01: np.where(np.greater_equal(x, 0), x,
                                                          np.multiply(negative_slope, x)),
    "log_sigmoid": lambda x: np.log(1 / (1 + np.exp(np.negative(x)))),
    "logsigmoid": lambda x: np.log(1 / (1 + np.exp(np.negative(x)))),
    "erf": _erf, "log2": np.log2, "log10": np.log10, "arcsinh": np.arcsinh,
    "arccosh": np.arccosh, "arctanh": np.arctanh, "logaddexp": np.logaddexp,
    "clip": np.clip, "where": np.where, "triu": np.triu, "tril": np.tril,
    "cumsum": lambda x, axis=0: np.cumsum(x, axis=axis), "revcumsum": _revcumsum,
    "einsum": np.einsum, "transpose": np.transpose, "swapaxes": lambda x, a, b: np.swapaxes(x, int(a), int(b)),
    "concatenate": lambda arrays, axis=0: np.concatenate(arrays, axis=axis),
    "stack": lambda arrays, axis=0: np.stack(arrays, axis=axis),
    "reshape": lambda x, shape: np.reshape(x, tuple(int(round(float(n)))
                                                    for n in np.atleast_1d(shape))),
}
CONSTANT_ARRAYS = ("ones", "zeros", "eye")
CONSTANTS = {"pi": np.pi, "e": np.e}
COMPARISONS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
               "==": np.equal, "!=": np.not_equal}


def _integer(value):
    """An index or axis read as NumPy takes it: a whole number as an int,
    an integer array as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _Keyword(tuple):
    """A keyword argument (name, value), told apart from a tuple argument."""


class _Unsupported(Exception):
    """A construct of the grammar this module has no NumPy reading for."""


_NO_VALUE = (ArithmeticError, np.linalg.LinAlgError, _Unsupported)


@v_args(inline=True)
class _Evaluator(Transformer_NonRecursive):
    """One expression tree to its NumPy value; names looked up in `scope`."""

    def __init__(self, scope: dict, dtype):
        super().__init__(visit_tokens=False)
        self.scope, self.dtype = scope, dtype

    def __default__(self, data, children, meta):
        raise _Unsupported(data)

    def number(self, token):
        return float(token)

    def name(self, token):
        if token == "None":
            return None
        if str(token) in self.scope:
            return self.scope[str(token)]
        if token in ("True", "False"):  # keepdims's values, unless declared
            return token == "True"
        return CONSTANTS[str(token)]

    def string(self, token):
        return str(token)[1:-1]

    def compare(self, left, op, right):
        return COMPARISONS[str(op)](left, right)

    def binop(self, left, op, right):
        if op == "@":
            return np.matmul(left, right)
        if op == "**":
            return np.power(np.asarray(left, self.dtype), right)
        return {"+": np.add, "-": np.subtract, "*": np.multiply,
                "/": np.divide}[str(op)](left, right)

    def summand(self, node):
        return node

    def terms(self, first, *rest):
        for op, node in zip(rest[::2], rest[1::2]):
            first = np.add(first, node) if op == "+" else np.subtract(first, node)
        return first

    def neg(self, _minus, node):
        return np.negative(node)

    def transpose(self, node, _prime=None):
        return np.transpose(node)

    def attribute(self, node, _attr):
        return np.transpose(node)

    def tuple(self, *items):
        return tuple(_integer(i) for i in items if i is not None)

    def slice(self, start, stop, step):
        return slice(*(None if p is None else _integer(p) for p in (start, stop, step)))

    def ellipsis(self, _token):
        return Ellipsis

    def subscripts(self, *items):
        return tuple(_integer(i) for i in items)

    def indexing(self, node, subscripts):
        return np.asarray(node)[subscripts]

    def at_update(self, target, _at, subscripts, method, value):
        out = np.array(target, dtype=np.result_type(target, value))
        if str(method) == "add":
            np.add.at(out, subscripts, value)
        else:
            out[subscripts] = value
        return out

    def keyword(self, key, value):
        return _Keyword((str(key), value if value is None or isinstance(value, (str, tuple, bool))
                         else _integer(float(value))))

    def arguments(self, *items):
        return list(items)

    def call(self, token, arguments):
        name = str(token)
        args = [a for a in arguments or () if not isinstance(a, _Keyword)]
        kwargs = dict(a for a in arguments or () if isinstance(a, _Keyword))
        if name in CONSTANT_ARRAYS:
            sizes = tuple(int(round(float(a))) for a in args)
            return np.eye(*sizes, dtype=self.dtype) if name == "eye" else \
                (np.ones if name == "ones" else np.zeros)(sizes, dtype=self.dtype)
        function = FUNCTIONS.get(name, getattr(np, name, None))
        if not isinstance(function, np.ufunc) and name not in FUNCTIONS:
            raise _Unsupported(name)  # registered at run time, and no NumPy ufunc of its name
        return function(*args, **kwargs)


def evaluate(problem, values: dict, dims: dict | None = None, dtype=np.float64):
    """The value of `problem`'s function at `values` (inputs by name), as
    NumPy computes the text as written, in `dtype`; dimensions from `dims`
    or from the inputs' shapes. None when the problem keeps no source text
    or the text cannot be evaluated at these numbers (a Python scalar
    overflow, a singular matrix) or uses a construct without a reading here."""
    if problem.source is None:
        return None
    scope = {name: float(size) for name, size in (dims or sizes_of(problem, values)).items()}
    for name, value in values.items():
        if name in problem.variables:
            integer = problem.variables[name].domain == "int"  # indices stay integers
            scope[name] = np.asarray(value, dtype=None if integer else dtype)[()]
    tree = lalr().parse(problem.source.lstrip("\ufeff"))
    result = None
    with np.errstate(all="ignore"):
        try:
            for statement in tree.children:
                if statement.data == "assign":
                    token, expression = statement.children
                    result = scope[str(token)] = _Evaluator(scope, dtype).transform(expression)
                elif statement.data == "result":
                    result = _Evaluator(scope, dtype).transform(statement.children[0])
        except VisitError as err:
            if isinstance(err.orig_exc, _NO_VALUE):
                return None
            raise err.orig_exc from None
        except _NO_VALUE:
            return None
    return np.asarray(result)[()]


def sizes_of(problem, values: dict) -> dict[str, int]:
    """The size of each dimension name, read off the inputs' shapes."""
    out = {}
    for name, v in problem.variables.items():
        for d, n in zip(v.shape, np.shape(values[name])):
            if d.is_Symbol:
                out.setdefault(str(d), int(n))
    return out


def with_noise(problem, values: dict, dims: dict | None = None):
    """The reference in float64 and the rounding error of that float64
    evaluation per entry, measured against the same formulas in extended
    precision (np.longdouble, 64-bit mantissa where the platform has it):
    (None, None) without a reference."""
    exact = evaluate(problem, values, dims)
    if exact is None:
        return None, None
    finer = evaluate(problem, values, dims, np.longdouble)
    if finer is None:
        return exact, np.zeros(np.shape(exact))
    with np.errstate(all="ignore"):
        gap = np.abs(np.asarray(finer, np.longdouble) - exact).astype(np.float64)
    return exact, np.where(np.isfinite(gap), gap, 0.0)


def value_error(value, problem, values: dict, dims: dict | None = None) -> float | None:
    """max |value − reference| beyond 10× the reference's own rounding
    error, over the entries where the reference is finite, relative to the
    larger of the two there and of 1 (a value near 0 is compared in absolute
    terms: a function that is 0 up to rounding may round either way); nan
    where the plain evaluation overflows everywhere, None where there is no
    plain evaluation (no source text, or plain NumPy raises)."""
    reference, gap = with_noise(problem, values, dims)
    if reference is None:
        return None
    value = np.asarray(value, dtype=np.float64)
    if value.shape != np.shape(reference):
        return float("inf")
    finite = np.isfinite(reference)
    if not finite.any():
        return float("nan")
    ref, got = np.asarray(reference)[finite], value[finite]
    excess = np.maximum(np.abs(got - ref) - 10 * np.asarray(gap)[finite], 0.0)
    if not np.all(np.isfinite(got)):
        return float("inf")
    scale = max(np.max(np.abs(ref)), np.max(np.abs(got)), 1.0)
    return float(np.max(excess) / scale)
