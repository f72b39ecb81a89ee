"""Numbers from SymPy matrix expressions, without matcalc.

`evaluate(sexpr, values, dims)` computes a SymPy matrix (or array, or
scalar) expression with NumPy at the given inputs: the tests use it to judge
SymPy's own derivatives and the expressions `matcalc.to_sympy` writes
independently of matcalc's code generator. Matrix expressions are walked
node by node; SymPy's array expressions (what `.diff` returns where it does
not manage a matrix form) are first converted back to matrices when SymPy can,
else computed explicitly on numeric matrices.
"""

from __future__ import annotations

import numpy as np
import sympy
from sympy import (Determinant, HadamardPower, HadamardProduct, Identity, Inverse,
                   KroneckerProduct, MatAdd, MatMul, MatPow, MatrixSymbol, OneMatrix, Trace,
                   Transpose, ZeroMatrix)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf
from sympy.matrices.expressions.matexpr import MatrixElement


class Unevaluated(Exception):
    """SymPy left a derivative unevaluated (or a form nothing here computes)."""


def _heaviside(x, h0=0.5):
    return float(np.heaviside(float(x), float(h0)))


_SCALAR_MODULES = [{"Heaviside": _heaviside, "Max": max, "Min": min,
                    "sign": lambda v: float(np.sign(v)), "Abs": abs}, "math"]


def _scalar_function(body_vars, body):
    f = sympy.lambdify(body_vars, body, modules=_SCALAR_MODULES)
    return np.vectorize(lambda *a: float(f(*a)), otypes=[float])


def _int(d, dims) -> int:
    return int(sympy.sympify(d).subs(dims))


class Evaluator:
    def __init__(self, values: dict, dims: dict):
        self.values = values  # name -> float or ndarray (vectors as 1-D)
        self.dims = {sympy.Symbol(str(k), integer=True, positive=True) if isinstance(k, str)
                     else k: v for k, v in dims.items()}
        self.memo: dict = {}

    def __call__(self, s):
        if s not in self.memo:
            self.memo[s] = self.node(s)
        return self.memo[s]

    def shape(self, s):
        return tuple(_int(d, self.dims) for d in s.shape)

    def node(self, s):
        if isinstance(s, (sympy.Derivative,)) or type(s).__name__ == "ArrayDerivative":
            raise Unevaluated(str(s))
        if isinstance(s, MatrixSymbol):
            v = np.asarray(self.values[s.name], dtype=float)
            return v.reshape(self.shape(s))
        if isinstance(s, sympy.Symbol):
            if s.name in self.values:
                return float(self.values[s.name])
            return float(s.subs(self.dims))
        if isinstance(s, sympy.Number):
            return float(s)
        if isinstance(s, Identity):
            return np.eye(*self.shape(s))
        if isinstance(s, OneMatrix):
            return np.ones(self.shape(s))
        if isinstance(s, ZeroMatrix):
            return np.zeros(self.shape(s))
        if isinstance(s, MatMul):
            out = 1.0
            for a in s.args:
                v = self(a)
                out = out * v if np.ndim(out) == 0 or np.ndim(v) == 0 else out @ v
            return out
        if isinstance(s, MatAdd):
            return sum(self(a) for a in s.args)
        if isinstance(s, Transpose):
            return np.transpose(self(s.arg))
        if isinstance(s, Inverse):
            return np.linalg.inv(self(s.arg))
        if isinstance(s, MatPow):
            base, e = self(s.args[0]), float(s.args[1])
            if base.shape == (1, 1):
                return base ** e
            if e.is_integer():
                return np.linalg.matrix_power(base, int(e))
            raise Unevaluated(f"fractional matrix power {s}")
        if isinstance(s, Trace):
            return float(np.trace(self(s.arg)))
        if isinstance(s, Determinant):
            return float(np.linalg.det(self(s.arg)))
        if isinstance(s, HadamardProduct):
            out = self(s.args[0])
            for a in s.args[1:]:
                out = out * self(a)
            return out
        if isinstance(s, HadamardPower):
            return self(s.base) ** self(s.exp)
        if isinstance(s, ElementwiseApplyFunction):
            f = s.function
            if not isinstance(f, sympy.Lambda):
                u = sympy.Dummy("u")
                f = sympy.Lambda(u, f(u))
            return _scalar_function(f.variables, f.expr)(self(s.expr))
        if isinstance(s, DiagMatrix):
            return np.diagflat(self(s.args[0]))
        if isinstance(s, DiagonalOf):
            return np.diag(self(s.args[0])).reshape(-1, 1)
        if isinstance(s, KroneckerProduct):
            out = self(s.args[0])
            for a in s.args[1:]:
                out = np.kron(out, self(a))
            return out
        if isinstance(s, MatrixElement):
            return self(s.parent)[_int(s.i, self.dims), _int(s.j, self.dims)]
        if type(s).__module__.startswith("sympy.tensor.array"):
            return self.array(s)
        if isinstance(s, sympy.Add):
            return sum(self(a) for a in s.args)
        if isinstance(s, sympy.Mul):
            out = 1.0
            for a in s.args:
                out = out * self(a)
            return out
        if isinstance(s, sympy.Pow):
            return self(s.args[0]) ** self(s.args[1])
        if isinstance(s, (sympy.Function, sympy.Max, sympy.Min)) and s.args:
            dummies = sympy.symbols(f"a0:{len(s.args)}", cls=sympy.Dummy)
            args = [self(a) for a in s.args]
            return _scalar_function(dummies, s.func(*dummies))(*args)
        raise Unevaluated(f"cannot evaluate {type(s).__name__}: {s}")

    def array(self, s):
        from sympy.tensor.array.expressions import convert_array_to_matrix
        try:
            m = convert_array_to_matrix(s)
        except Exception:  # noqa: BLE001 - SymPy raises many kinds here
            m = s
        if not type(m).__module__.startswith("sympy.tensor.array"):
            return self(m)
        return self.explicit(s)

    def explicit(self, s):
        """Compute an array expression on explicit numeric matrices."""
        if s.atoms(sympy.Derivative) or "ArrayDerivative" in sympy.srepr(s):
            raise Unevaluated(str(s))
        s = s.xreplace({d: sympy.Integer(n) for d, n in self.dims.items()})
        replace = {m: sympy.ImmutableMatrix(self(m)) for m in s.atoms(MatrixSymbol)}
        for sym in s.free_symbols - set(replace):
            if isinstance(sym, sympy.Symbol):
                replace[sym] = sympy.Float(self(sym))
        try:
            out = s.xreplace(replace).doit()
            if hasattr(out, "as_explicit"):
                out = out.as_explicit()
            return np.array(sympy.Array(out).tolist() if not isinstance(out, sympy.Expr)
                            or out.shape else out, dtype=float)
        except Unevaluated:
            raise
        except Exception as err:  # noqa: BLE001
            raise Unevaluated(f"cannot evaluate {type(s).__name__}: {err}") from None


def evaluate(sexpr, values: dict, dims: dict):
    """NumPy value of a SymPy expression; `values` maps names to arrays (a
    vector as 1-D or n x 1), `dims` dimension names (or symbols) to sizes."""
    return Evaluator(values, dims)(sexpr)


__all__ = ["evaluate", "Unevaluated"]
