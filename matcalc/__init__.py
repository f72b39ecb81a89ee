"""matcalc: symbolic matrix calculus for NumPy users.

    >>> import matcalc
    >>> p = matcalc.problem("sum((X @ w - y) ** 2)", X="N x D", w="D", y="N", wrt="w")
    >>> print(matcalc.grad(p))
    # gradient of f = sum((X @ w - y) ** 2)
    t0 = X @ w - y
    ∂f/∂w = 2 * (X.T @ t0)
"""

from ._version import __version__  # noqa: F401
from .api import (check, codegen, compile, grad, hessian, hvp, jacobian, parse,  # noqa: F401
                  problem, rules)
from .errors import (DomainError, MatcalcError, NameResolutionError,
                     ParseError, ShapeError)
from . import targets  # noqa: F401  (registers the printers: str(x), x.latex())

__all__ = ["parse", "problem", "grad", "hessian", "hvp", "jacobian", "codegen", "compile",
           "check", "rules", "to_sympy", "from_sympy", "MatcalcError",
           "ParseError", "NameResolutionError", "ShapeError", "DomainError"]


def __getattr__(name: str):
    """`to_sympy` and `from_sympy`, imported on first use: the CLI never
    needs the SymPy bridge."""
    if name in ("to_sympy", "from_sympy"):
        from .bridges import sympy as sympy_bridge
        return getattr(sympy_bridge, name)
    raise AttributeError(f"module 'matcalc' has no attribute {name!r}")
