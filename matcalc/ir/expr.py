"""The typed expression graph: immutable, hash-consed nodes with symbolic shapes.

Three node classes: `Var` (a named input or intermediate), `Const` (a scalar
SymPy number or expression in dimension symbols) and `Apply` (an operator from
the table in `ops.py` applied to argument nodes). Nodes are interned: building
the same node twice returns the same object, so equality is identity and
common subexpressions are shared by construction. Build nodes with `var`,
`const` and the builders in `ops.py`, never with the class constructors.
"""

from __future__ import annotations

import atexit
import functools
import math
import weakref
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import sympy

from ..errors import DomainError
from ..hooks import provided
from .shapes import Shape

_interned: "weakref.WeakValueDictionary[tuple, Expr]" = weakref.WeakValueDictionary()


@atexit.register
def _release_table() -> None:
    """At exit, while imports still work, a fresh intern table: the old one
    is freed with its weak references, so a node freed later, as Python
    tears modules down, leaves no table to be removed from (removal hashes
    its key, and a SymPy float's hash then fails: 'Exception ignored')."""
    global _interned
    _interned = weakref.WeakValueDictionary()


class Expr:
    """Base of all nodes; every node has a `shape`."""

    shape: Shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return provided("to_text")(self)

    def _repr_latex_(self) -> str:
        return f"${provided('to_latex')(self)}$"


@dataclass(frozen=True, eq=False, repr=False)
class Var(Expr):
    """A named scalar, vector or matrix; `structure` is '', 'symmetric' or
    'spd'; `domain` the values its entries take: '', 'positive', 'sign'
    (each ±1) or 'onehot' (each row, of a vector its entries, one 1 and
    the rest 0)."""

    name: str
    shape: Shape
    structure: str = ""
    domain: str = ""
    args = ()

    def __repr__(self) -> str:
        return f"Var({self.name!r}, {self.shape!r})"


@dataclass(frozen=True, eq=False, repr=False)
class Const(Expr):
    """A scalar constant: a SymPy number or an expression in dimensions."""

    value: sympy.Expr
    shape: Shape = ()
    args = ()

    def __repr__(self) -> str:
        return f"Const({self.value})"


@dataclass(frozen=True, eq=False, repr=False)
class Apply(Expr):
    """`op` applied to `args`; `params` holds keyword settings such as axis."""

    op: str
    args: tuple
    params: tuple
    shape: Shape

    def param(self, key: str, default=None):
        for k, v in self.params:
            if k == key:
                return v
        return default

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params)
        return f"{self.op}({', '.join(map(repr, self.args))}{extra})"


def _intern(key: tuple, make: Callable[[], Expr]) -> Expr:
    node = _interned.get(key)
    if node is None:
        node = make()
        _interned[key] = node
    return node


def var(name: str, shape: Shape, structure: str = "", domain: str = "") -> Var:
    """The variable `name` of the given shape, structure and domain."""
    shape = tuple(sympy.sympify(d) for d in shape)
    return _intern(("var", name, shape, structure, domain),
                   lambda: Var(name, shape, structure, domain))


def const(value) -> Const:
    """A scalar constant (ints and fractions stay exact)."""
    value = sympy.sympify(value)
    if value.is_number:
        if not _is_float(value):
            shown = "infinite" if value.has(sympy.zoo, sympy.oo, -sympy.oo) else \
                _shown(_text(value))
            complex_ = value.is_extended_real is False and not value.has(sympy.zoo)
            raise _out_of_range(shown, "it is not a real number" if complex_
                                else "division by zero or overflow")
    else:
        value = _normal_form(value)
    if isinstance(value, sympy.Float):  # one precision, so printing round-trips
        value = sympy.Float(float(value))
    return _intern(("const", type(value).__name__, value), lambda: Const(value))


def _is_float(value: sympy.Expr) -> bool:
    """Whether a number is a finite float64."""
    try:
        return math.isfinite(float(value))
    except (OverflowError, TypeError):
        return False


def _text(value: sympy.Expr) -> str:
    try:
        return str(value)
    except ValueError:  # Python refuses to write an integer of 4,300 digits
        return "a number of thousands of digits"


def _shown(text: str, width: int = 15) -> str:
    return f"{text[:width - 3]}..." if len(text) > width else text


def _out_of_range(shown: str, why: str) -> DomainError:
    return DomainError(f"a constant out of range ({shown}): {why}")


@functools.lru_cache(maxsize=None)
def _normal_form(value: sympy.Expr) -> sympy.Expr:
    """One form for equal rational functions of the dimensions: p / q with p
    and q expanded and coprime, so -(N**2 + 1)/K and (-1 - N**2)/K are one
    constant. The constant, p and q must be finite floats with every
    dimension 2, the least size at which a power grows (N ** 5000 is not)."""
    value = sympy.cancel(value)
    at_two = {d: 2 for d in value.free_symbols}
    for part in (value, *sympy.fraction(value)):
        number = part.subs(at_two)
        if number.is_finite and not _is_float(number):
            raise _out_of_range(_shown(provided("scalar_text")(part), 40),
                                "it overflows a float with every dimension 2")
    return value


_LOG10_MAX = math.log10(1.7976931348623157e308)


def const_power(base: sympy.Expr, exponent: sympy.Expr) -> Const:
    """The constant base ** exponent, its size judged before it is computed
    (a tower 2 ** 2 ** ... would not finish): out of float range, with every
    dimension 2, it is a DomainError; a number below the least float is the
    float it rounds to (0.5 ** 5000 = 0.0)."""
    at_two = {d: 2 for d in base.free_symbols | exponent.free_symbols}
    b, e = (float(v.subs(at_two)) for v in (base, exponent))
    if b not in (0.0, 1.0, -1.0) and math.isfinite(e):
        digits = e * math.log10(abs(b))
        if digits > _LOG10_MAX and at_two:  # symbolic: base ** exponent is cheap
            raise _out_of_range(_shown(provided("scalar_text")(base ** exponent), 40),
                                "it overflows a float with every dimension 2")
        if digits > _LOG10_MAX:
            raise _out_of_range(f"{_shown(_text(base))} ** {_shown(_text(exponent))}",
                                "it overflows a float")
        if digits < -_LOG10_MAX and not at_two and (b > 0 or e.is_integer()):
            return const(sympy.Float(0.0))
    return const(base ** exponent)


def apply(op, args: tuple, params: tuple = ()) -> Apply:
    """Apply the operator entry `op` (shape rule checked once, on creation)."""
    key = ("apply", op.name, args, params)
    return _intern(key, lambda: Apply(op.name, args, params,
                                      op.shape([a.shape for a in args], dict(params))))


def is_op(node: Expr, *names: str) -> bool:
    """Whether `node` applies one of the operators `names`."""
    return isinstance(node, Apply) and node.op in names


def is_const(node: Expr, value=None) -> bool:
    """Whether `node` is a constant (equal to `value` when given)."""
    return isinstance(node, Const) and (value is None or node.value == value
                                        or (node.value.is_Float and float(node.value) == value))


def postorder(roots: Iterable[Expr], done=()) -> Iterator[Expr]:
    """Every node reachable from `roots` once, children before parents;
    nodes in `done` (and what lies below them) are skipped."""
    seen: set[int] = {id(n) for n in roots if n in done}
    for root in roots:
        if id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                yield node
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.args)
                         if id(a) not in seen and a not in done)


def rewrite(roots: list, visit: Callable[[Expr, tuple], Expr], fixed=None) -> list:
    """Rebuild `roots` bottom-up: `visit(node, new_args)` returns the new node.

    A node in `fixed` (a dict, node -> new node) becomes its value there,
    without a visit of it or of what lies below it.
    """
    done: dict[int, Expr] = {}
    if not fixed:
        for node in postorder(roots):
            done[id(node)] = visit(node, tuple(done[id(a)] for a in node.args))
        return [done[id(r)] for r in roots]
    for node in postorder(roots, fixed):
        done[id(node)] = visit(node, tuple(done[id(a)] if id(a) in done else fixed[a]
                                           for a in node.args))
    return [done[id(r)] if id(r) in done else fixed[r] for r in roots]
