"""matcalc: symbolic matrix calculus for NumPy users.

    >>> import matcalc
    >>> p = matcalc.problem("sum((X @ w - y) ** 2)", X="N x D", w="D", y="N", wrt="w")
    >>> print(matcalc.grad(p))
    # gradient of f = sum((X @ w - y) ** 2)
    t0 = X @ w - y
    dw = X.T @ (2 * t0)
"""

__version__ = "0.1.0"

from .api import check, codegen, compile, grad, hessian, hvp, jacobian, parse, problem  # noqa: E402,E501
from .sympy_bridge import from_sympy, to_sympy  # noqa: E402
from .errors import (DomainError, MatcalcError, NameResolutionError,  # noqa: E402
                     ParseError, ShapeError)

__all__ = ["parse", "problem", "grad", "hessian", "hvp", "jacobian", "codegen", "compile",
           "check", "to_sympy", "from_sympy", "MatcalcError",
           "ParseError", "NameResolutionError", "ShapeError", "DomainError"]
