"""How a target writes an operator: the `Form` type and the forms registry.

Each target (text, LaTeX, Unicode, NumPy) owns one `Forms` registry that
lists only its exceptions; every other operator is written by the target's
default, made from the operator's name (`name(x)`, `\\operatorname{name}`,
`np.name(x)`). Registering a form at run time is one assignment,
`targets.latex.FORMS["cbrt"] = latex_call(r"\\sqrt[3]")`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..ops.core import OPS
from ..ops.indexing import key_text
from . import precedence as P


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


class Forms(dict):
    """A target's forms: operator name -> `Form`, holding only the
    exceptions; a name not listed gets `default(name)`."""

    def __init__(self, default: Callable[[str], Form], entries: dict | None = None):
        super().__init__(entries or {})
        self.default = default

    def __missing__(self, name: str) -> Form:
        return self.default(name)


def kwargs(params: dict) -> str:
    """`, key=value` for each parameter that is set."""
    return "".join(f", {k}={axis_text(v)}" for k, v in params.items() if v is not None)


def axis_text(axis) -> str:
    """An axis parameter as NumPy writes it: one axis of a tuple as the
    integer, (2,) as 2."""
    return str(axis[0]) if isinstance(axis, tuple) and len(axis) == 1 else str(axis)


def call(name: str) -> Form:
    """The form `name(arg, ..., key=value)`."""
    return Form(lambda a, p: f"{name}({', '.join(a)}{kwargs(p)})")


def shaped(function: str, rest: str) -> Form:
    """`function((N, D), rest)`: an array of the node's `shape` parameter
    (a one-axis shape keeps its tuple comma, `(N,)`)."""
    return Form(lambda a, p: f"{function}(({', '.join(map(str, p['shape']))}"
                + ("," if len(p["shape"]) == 1 else "") + f"), {rest})")


def latex_call(command: str) -> Form:
    """The LaTeX form `\\command\\left(arg\\right)`."""
    return Form(lambda a, p: f"{command}\\left({', '.join(a)}\\right)")


def infix(symbol: str, prec: int, right_assoc: bool = False) -> Form:
    """`a symbol b`, binding at `prec` (the right operand first for `**`)."""
    args = (prec + 1, prec) if right_assoc else (prec, prec + 1)
    return Form("{0}" + symbol + "{1}", prec, args)


def _inserted(axis: tuple) -> str:
    """The subscript that inserts axes of size 1 at the positions `axis`
    of the result: (1, 3) is `:, None, :, None` (the rest follow as `:`)."""
    return ", ".join("None" if k in axis else ":" for k in range(max(axis, default=-1) + 1))


# Operators in Python's syntax, as both the input language and NumPy write
# them. Products of matrices are parenthesised against elementwise products
# (both bind as tightly in Python), so `(A @ B) * C` never reads as
# `A @ (B * C)`.
PYTHON_SYNTAX = {
    "add": Form(" + ", P.ADD),
    "mul": Form(" * ", P.MUL),
    "div": infix(" / ", P.MUL),
    "pow": infix(" ** ", P.POW, True),
    "matmul": Form("{0} @ {1}", P.MUL, (P.MUL, P.MUL + 1)),
    "transpose": Form("{0}.T", P.POSTFIX, P.POSTFIX),
    "name": Form(lambda a, p: p["name"]),
    "adjoint": Form("{0}", P.LOWEST),
    "col": Form("{0}[:, None]", P.POSTFIX, P.POSTFIX),
    "row": Form("{0}[None, :]", P.POSTFIX, P.POSTFIX),
    "expand_dims": Form(lambda a, p: f"{a[0]}[{_inserted(p['axis'])}]", P.POSTFIX, P.POSTFIX),
    "compare": Form(lambda a, p: f"{a[0]} {p['op']} {a[1]}", P.COMPARE, P.ADD),
    "index": Form(lambda a, p: f"{a[0]}[{key_text(p['key'])}]", P.POSTFIX, P.POSTFIX),
    "gather": Form("{0}[{1}]", P.POSTFIX, (P.POSTFIX, P.LOWEST)),
}


def sizes(shape) -> str:
    """A printed shape as a tuple: `(B, T, D)`, `(N,)`."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def joined(function: str, axis: str = "axis") -> Form:
    """`function((A, B), axis=k)`: arrays joined along an axis."""
    return Form(lambda a, p: f"{function}(({', '.join(a)}), {axis}={p['axis']})")


def reshaped(function: str) -> Form:
    """`function(x, (B, T, H, E))`: x's entries in C order in a new shape."""
    return Form(lambda a, p: f"{function}({a[0]}, {sizes(p['shape'])})")


def triangle(name: str) -> Form:
    """`triu(X)`, `triu(X, 1)`: the diagonal offset k by position, where not 0
    (NumPy, PyTorch and JAX agree on the position, not on its keyword)."""
    return Form(lambda a, p: f"{name}({a[0]}" + (f", {p['k']})" if p.get("k") else ")"))


def numbered(function: str, op: str, key: str, first: str = "") -> Form:
    """`function(first x, value)`: the elementwise `op` with its number `key`
    (elu's alpha), the table's default where the node leaves it unset."""
    return Form(lambda a, p: f"{function}({first}{a[0]}, {p.get(key, _default(op, key))!r})")


def _default(op: str, key: str):
    return dict(OPS[op].params)[key]


# The helper a helper calls, by operator (the NumPy and array-API GELU's Φ is
# erf's)
REQUIRES = {"gelu": "erf"}


def with_required(ops: set) -> set:
    """The operators whose helpers `ops`' helpers need: `ops` and those they call."""
    return set(ops) | {REQUIRES[op] for op in ops if op in REQUIRES}


# The generated helper that reads a key's slices of negative step (which
# PyTorch lacks) as slices of positive step and flips (PyTorch's _index and
# _unindex, the array-API target's _index).
FORWARD_KEY = '''
def _forward(key, shape):
    """(key, flips): the key with each slice of negative step as the slice
    of positive step of the same entries, and the result's axes to flip."""
    out, flips, axis = [], [], 0
    for k in key:
        if isinstance(k, slice):
            places = range(shape[axis])[k]
            if places.step < 0:
                places = places[::-1]
                flips.append(len(out) - sum(isinstance(e, int) for e in out))
            stop = places.stop if places.stop < shape[axis] else None  # in bounds
            k = slice(places.start, stop, places.step)
        out.append(k)
        axis += k is not None
    return tuple(out), flips
'''
