"""The builders' identities as named rules, in one registry.

A rule is a function of the operands a builder is about to combine that
returns an equal node (a stable form, a cheaper product, a simpler
reduction) or None. Rules are registered per operator, in the order the
builder tries them; `first(op, *args, **params)` returns the first result.
Each rule can be listed (name, operator, identity), turned off
(`with disabled("log_softplus"): ...`) and, through `recording()`, named in
the derivation shown step by step. The rules themselves live in
`matcalc.ops.identities`; this module knows nothing of the builders.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from ..ir.expr import Expr


@dataclass(frozen=True)
class Rule:
    """One identity: `fn(*args, **params)` is an equal node or None."""

    name: str
    op: str
    identity: str
    fn: Callable[..., Expr | None]


RULES: dict[str, Rule] = {}
_BY_OP: dict[str, list[Rule]] = {}
_OFF: set[str] = set()
_FIRED: list[list[Rule]] = []


def rule(op: str) -> Callable:
    """Register the decorated function as a rule for operator `op`; its name
    is the function's, its identity the first line of its docstring."""
    def register(fn: Callable) -> Callable:
        entry = Rule(fn.__name__, op, (fn.__doc__ or "").strip().splitlines()[0], fn)
        if entry.name in RULES:
            raise ValueError(f"a rule named {entry.name!r} is already registered")
        RULES[entry.name] = entry
        _BY_OP.setdefault(op, []).append(entry)
        return fn
    return register


def first(op: str, *args: Expr, **params) -> Expr | None:
    """The node the first enabled rule for `op` makes of `args`, or None."""
    for entry in _BY_OP.get(op, ()):
        if entry.name in _OFF:
            continue
        result = entry.fn(*args, **params)
        if result is not None:
            for fired in _FIRED:
                if entry not in fired:
                    fired.append(entry)
            return result
    return None


def listing(op: str | None = None) -> list[Rule]:
    """Every rule (or those of one operator), in the order they are tried."""
    return [r for r in RULES.values() if op is None or r.op == op]


@contextmanager
def disabled(*names: str) -> Iterator[None]:
    """The named rules turned off for the duration of the block."""
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise KeyError(f"no rule named {', '.join(map(repr, unknown))}")
    added = set(names) - _OFF
    _OFF.update(added)
    try:
        yield
    finally:
        _OFF.difference_update(added)


@contextmanager
def recording() -> Iterator[list[Rule]]:
    """The rules that fire inside the block, each once, in firing order."""
    fired: list[Rule] = []
    _FIRED.append(fired)
    try:
        yield fired
    finally:
        _FIRED.pop()
