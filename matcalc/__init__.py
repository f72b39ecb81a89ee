"""matcalc: symbolic matrix calculus for NumPy users.

    >>> import matcalc
    >>> p = matcalc.problem("sum((X @ w - y) ** 2)", X="N x D", w="D", y="N", wrt="w")
    >>> print(matcalc.grad(p))
    # gradient of f = sum((X @ w - y) ** 2)
    t0 = X @ w - y
    dw = X.T @ (2 * t0)
"""

__version__ = "0.1.0"

from .api import check, codegen, compile, grad, parse, problem  # noqa: E402
from .errors import (DomainError, MatcalcError, NameResolutionError,  # noqa: E402
                     ParseError, ShapeError)

__all__ = ["parse", "problem", "grad", "codegen", "compile", "check", "MatcalcError",
           "ParseError", "NameResolutionError", "ShapeError", "DomainError"]
