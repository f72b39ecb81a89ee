"""Functions that a lower layer calls and a higher layer provides.

Nodes, problems and results print themselves (`str(x)`, `x.latex()`), and a
problem reads an expression over its names (`p.expr("X @ W1")`); but the
printers and the parser sit above the classes that offer these methods. So
each provider registers its functions here when it is imported (the package
`matcalc` imports them all), and the classes look them up by name: imports
point one way, from the providers down to the expression graph.
"""

from __future__ import annotations

from typing import Callable

_PROVIDED: dict[str, Callable] = {}


def provide(*functions: Callable) -> None:
    """Register each function under its own name."""
    for function in functions:
        _PROVIDED[function.__name__] = function


def provided(name: str) -> Callable:
    """The function registered as `name` (by the printers or the parser)."""
    return _PROVIDED[name]
