"""Moving expressions between matcalc and SymPy's matrix expressions.

`to_sympy(expr)` writes a matcalc expression with SymPy's matrix-expression
classes, so SymPy users can take matcalc's results (and matcalc's inputs)
into SymPy; `from_sympy(sexpr, scope)` reads the same subset back through
matcalc's builders, so the result is canonical and interned.

The correspondence:

* a matrix variable `X: N x D` is `MatrixSymbol("X", N, D)` over the
  problem's dimension symbols; a vector `x: N` the column
  `MatrixSymbol("x", N, 1)`; a scalar variable `Symbol("a", real=True)`;
  a symmetric or spd variable a plain `MatrixSymbol` (SymPy has no symmetric
  one: its derivatives by it are the unconstrained ones, whose symmetric part
  is matcalc's gradient);
* `A @ B`, `A @ x`, `x @ y` are `A*B`, `A*x`, `x.T*y` (a 1 x 1 matrix), and
  `x @ A` is the column `(x.T*A).T`;
* `A + B` is `MatAdd`, `c * A` `MatMul(c, A)`, `A * B` `HadamardProduct`,
  `A / B` `A ∘ HadamardPower(B, -1)`, `A ** k` `HadamardPower(A, k)`;
  broadcasting is spelled with `OneMatrix`: `X + b` is `X + 1 bᵀ`, `X + c`
  is `X + c 1 1ᵀ`;
* `A.T`, `inv(A)`, `solve(A, B)`, `outer(x, y)`, `kron(A, B)`, `diag(x)`,
  `diag(X)`, `eye`, `ones`, `zeros` are `Transpose`, `Inverse`,
  `Inverse(A)*B`, `x*y.T`, `KroneckerProduct`, `DiagMatrix`, `DiagonalOf`,
  `Identity`, `OneMatrix`, `ZeroMatrix`;
* `trace`, `det`, `logdet` are `Trace`, `Determinant`, `log(Determinant)`;
* `sum(X)`, `sum(X, axis=0)`, `sum(X, axis=1)`, `sum(x)` are `1ᵀX1`, `Xᵀ1`,
  `X1`, `1ᵀx` with `OneMatrix`;
* elementwise functions (`exp(X)`, `sigmoid(X)`, `relu(X)`, ...) are
  `ElementwiseApplyFunction` (`X.applyfunc`) of the scalar formula
  (`1/(1 + exp(-u))`, `Max(u, 0)`, `Heaviside(u, 0)` for `step`, ...);
  `maximum(X, c)` and `minimum(X, c)` with a constant `c` likewise;
* `norm(x)` is `sqrt` of the 1 x 1 matrix `x.T*x`, `norm(X)` is
  `sqrt(Trace(X.T*X))`, `norm1(x)` is `1ᵀ|x|`; `logsumexp` and `softmax`
  (any axis) are written out with `exp`, `log` and `OneMatrix`.

A scalar that matcalc computes as a product or sum of arrays (`x @ A @ x`,
`sum(X)`) is the 1 x 1 matrix expression SymPy itself writes (`x.T*A*x`);
other scalars (`trace(X)`, `det(X)`, scalar variables) are scalar
expressions. Where the two meet (a 1 x 1 product scaling a matrix) the 1 x 1
matrix becomes a scalar as `Trace(...)`; added to a scalar, the scalar
becomes `c*Identity(1)`. Named intermediates are written out in full.

`to_sympy` raises `MatcalcError` for what SymPy cannot write: the maximum or
minimum of two arrays (or of an array and a variable), a power with an array
or a variable exponent of an array, and the adjoints of kron
(`unkron_left`, `unkron_right`, which gradients of kron contain).

Reading back, vectors lose their orientation (a column `v[:, None]` comes
back as the vector `v`), `log(det(X))` comes back as `logdet(X)`,
`solve(A, B)` as `inv(A) @ B`, `maximum(x, 0)` as `relu(x)`, and the
written-out `norm1`, `softmax` and `logsumexp` as their formulas: equal in
value, not the same node. Everything else comes back as the same node.
"""

from __future__ import annotations

import sympy
from sympy import (Determinant, HadamardPower, HadamardProduct, Identity, Inverse,
                   KroneckerProduct, MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol,
                   OneMatrix, Trace, Transpose, ZeroMatrix)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf

from .. import ops
from ..errors import MatcalcError
from ..ir.expr import Apply, Const, Expr, Var, const, postorder
from ..ir.shapes import broadcast
from ..targets.text import FORMS as TEXT_FORMS

__all__ = ["to_sympy", "from_sympy"]


# ------------------------------------------------ elementwise functions ---

def _scalar_functions() -> dict:
    """matcalc's elementwise functions as SymPy functions of one scalar."""
    s = sympy
    return {
        "exp": s.exp, "log": s.log, "sqrt": s.sqrt, "abs": s.Abs, "sign": s.sign,
        "sin": s.sin, "cos": s.cos, "tan": s.tan, "tanh": s.tanh,
        "arcsin": s.asin, "arccos": s.acos, "arctan": s.atan,
        "sinh": s.sinh, "cosh": s.cosh,
        "sigmoid": lambda u: 1 / (1 + s.exp(-u)),
        "relu": lambda u: s.Max(u, 0),
        "softplus": lambda u: s.log(1 + s.exp(u)),
        "step": lambda u: s.Heaviside(u, 0),
        "log1p": lambda u: s.log(1 + u),
        "expm1": lambda u: s.exp(u) - 1,
        "square": lambda u: u ** 2,
    }


FUNCTIONS = _scalar_functions()
# Read back first where two templates could match the same SymPy function
# (sqrt before pow, and so on); the names are matcalc's.
_READ_ORDER = ["sigmoid", "softplus", "relu", "step", "log1p", "expm1", "square", "sqrt",
               "exp", "log", "abs", "sign", "sin", "cos", "tan", "tanh", "arcsin",
               "arccos", "arctan", "sinh", "cosh"]


def _unsupported(what: str) -> MatcalcError:
    return MatcalcError(f"SymPy cannot represent {what}")


# -------------------------------------------------------------- to_sympy ---

def _is_matrix(s) -> bool:
    return isinstance(s, MatrixExpr) or getattr(s, "is_Matrix", False)


def _as_scalar(s):
    """A SymPy scalar for a matcalc scalar (a 1 x 1 matrix becomes its trace)."""
    return Trace(s) if _is_matrix(s) else s


def _column(shape):
    """SymPy's shape of a matcalc shape (vectors are columns)."""
    if len(shape) == 1:
        return (shape[0], sympy.Integer(1))
    return tuple(shape)


def _broadcast(s, shape, target):
    """The SymPy form of `s` (matcalc shape `shape`) broadcast to `target`."""
    if tuple(shape) == tuple(target):
        return s
    if not target:
        return s
    rows, cols = _column(target)
    if not shape:
        if _is_matrix(s):  # 1 x 1: 1 s 1ᵀ
            if cols == 1:
                return _matmul(OneMatrix(rows, 1), s)
            return _matmul(OneMatrix(rows, 1), s, OneMatrix(1, cols))
        return MatMul(s, OneMatrix(rows, cols))
    if len(shape) == 1:  # a vector broadcast over the rows of a matrix
        return MatMul(OneMatrix(rows, 1), Transpose(s))
    if shape[0] == 1 and rows != 1:
        s = MatMul(OneMatrix(rows, 1), s)
    if shape[1] == 1 and cols != 1:
        s = MatMul(s, OneMatrix(1, cols))
    return s


def _elementwise(name: str, s, shape):
    f = FUNCTIONS[name]
    if not shape and not _is_matrix(s):
        return f(s)
    u = sympy.Dummy("u")
    return ElementwiseApplyFunction(sympy.Lambda(u, f(u)), s)


def _total(s, shape):
    """sum over everything: 1ᵀ s (vector) or 1ᵀ s 1 (matrix)."""
    if not shape:
        return s
    rows, cols = _column(shape)
    if len(shape) == 1:
        return MatMul(OneMatrix(1, rows), s)
    return MatMul(OneMatrix(1, rows), s, OneMatrix(cols, 1))


def _sum_axis(s, shape, axis):
    if axis is None:
        return _total(s, shape)
    rows, cols = _column(shape)
    if axis == 0:  # column sums, a vector: (1ᵀ X)ᵀ = Xᵀ 1
        return MatMul(Transpose(s), OneMatrix(rows, 1))
    return MatMul(s, OneMatrix(cols, 1))


def _matmul(*factors):
    """A flat SymPy product (nested products spliced, coefficients folded)."""
    return MatMul(*factors, evaluate=True)


def _hadamard(*factors):
    return factors[0] if len(factors) == 1 else HadamardProduct(*factors)


class _ToSympy:
    def var(self, v: Var):
        if not v.shape:
            return sympy.Symbol(v.name, real=True)
        return MatrixSymbol(v.name, *_column(v.shape))

    def convert(self, root: Expr):
        done: dict[int, object] = {}
        for node in postorder([root]):
            done[id(node)] = self.node(node, [done[id(a)] for a in node.args])
        return done[id(root)]

    def node(self, n: Expr, a: list):
        if isinstance(n, Var):
            return self.var(n)
        if isinstance(n, Const):
            return n.value
        op, shape = n.op, n.shape
        shapes = [x.shape for x in n.args]
        if op in ("name", "adjoint"):
            return a[0]
        if op == "add":
            if not shape:
                if any(_is_matrix(x) for x in a):
                    return MatAdd(*(x if _is_matrix(x) else MatMul(x, Identity(1)) for x in a))
                return sympy.Add(*a)
            return MatAdd(*(_broadcast(x, s, shape) for x, s in zip(a, shapes)))
        if op == "mul":
            scalars = [x for x, s in zip(a, shapes) if not s]
            arrays = [_broadcast(x, s, shape) for x, s in zip(a, shapes) if s]
            if not arrays:
                if any(_is_matrix(x) for x in scalars):
                    return MatMul(*scalars)
                return sympy.Mul(*scalars)
            coefficient = sympy.Mul(*(_as_scalar(x) for x in scalars))
            return MatMul(coefficient, _hadamard(*arrays)) if scalars else _hadamard(*arrays)
        if op == "div":
            num, den = a
            if not shapes[1]:
                if not shape:
                    if _is_matrix(den):
                        return MatMul(num if _is_matrix(num) else num * Identity(1),
                                      Inverse(den))
                    return num / den
                return MatMul(1 / _as_scalar(den), _broadcast(num, shapes[0], shape))
            inverse = HadamardPower(_broadcast(den, shapes[1], shape), -1)
            if not shapes[0]:
                return MatMul(_as_scalar(num), inverse)
            return HadamardProduct(_broadcast(num, shapes[0], shape), inverse)
        if op == "pow":
            base, e = a
            if shapes[1] or _is_matrix(e):
                raise _unsupported("an elementwise power with an array exponent")
            if not shapes[0] and not _is_matrix(base):
                return base ** e
            if not isinstance(n.args[1], Const):
                raise _unsupported("an elementwise power of an array with a variable exponent")
            return HadamardPower(base, e)
        if op == "matmul":
            x, y = a
            sx, sy = shapes
            if len(sx) == 1:  # a vector on the left is a row
                x = x.arg if isinstance(x, Transpose) else Transpose(x)
            out = _matmul(x, y)
            if len(sx) == 1 and len(sy) == 2:
                return Transpose(out)  # x @ A: the column (xᵀA)ᵀ
            return out
        if op == "transpose":
            return Transpose(a[0])
        if op == "outer":
            return _matmul(a[0], Transpose(a[1]))
        if op == "col":
            return a[0]
        if op == "row":
            return Transpose(a[0])
        if op == "sum":
            return _sum_axis(a[0], shapes[0], n.param("axis"))
        if op == "trace":
            return Trace(a[0])
        if op == "det":
            return Determinant(a[0])
        if op == "logdet":
            return sympy.log(Determinant(a[0]))
        if op == "inv":
            return Inverse(a[0])
        if op == "solve":
            return _matmul(Inverse(a[0]), a[1])
        if op == "eye":
            return Identity(shape[0])
        if op == "ones":
            return OneMatrix(*_column(shape))
        if op == "zeros":
            return ZeroMatrix(*_column(shape))
        if op == "diagm":
            return DiagMatrix(a[0])
        if op == "diag":
            return DiagonalOf(a[0])
        if op == "kron":
            return KroneckerProduct(a[0], a[1])
        if op == "norm":
            if len(shapes[0]) == 1:
                return _elementwise("sqrt", MatMul(Transpose(a[0]), a[0]), ())
            if not shapes[0]:
                return sympy.Abs(a[0])
            return sympy.sqrt(Trace(MatMul(Transpose(a[0]), a[0])))
        if op == "norm1":
            return _total(_elementwise("abs", a[0], shapes[0]), shapes[0])
        if op in ("maximum", "minimum"):
            if shapes[0] and shapes[1]:
                raise _unsupported(f"{op} of two arrays (only of an array and a scalar)")
            f = sympy.Max if op == "maximum" else sympy.Min
            if not shape:
                return f(_as_scalar(a[0]), _as_scalar(a[1]))
            array, scalar = (a[0], a[1]) if shapes[0] else (a[1], a[0])
            if _is_matrix(scalar) or not isinstance(n.args[1 if shapes[0] else 0], Const):
                raise _unsupported(f"{op} of an array and a variable")
            u = sympy.Dummy("u")
            return ElementwiseApplyFunction(sympy.Lambda(u, f(u, scalar)), array)
        if op in ("softmax", "logsumexp"):
            return self.softmax(op, a[0], shapes[0], n.param("axis"))
        if _elementwise_op(op) and op in FUNCTIONS:
            return _elementwise(op, a[0], shape)
        raise _unsupported(f"'{op}' ({TEXT_FORMS[op].render(['…'] * len(a), {})})"
                           if op in ops.OPS else f"'{op}'")

    def softmax(self, op, x, shape, axis):
        e = _elementwise("exp", x, shape)
        total = _sum_axis(e, shape, axis)
        if op == "logsumexp":
            return _elementwise("log", total, () if axis is None else (1,))
        if axis is None:
            return _hadamard(e, _broadcast(HadamardPower(total, -1), (), shape))
        rows, cols = _column(shape)
        inverse = HadamardPower(total, -1)
        spread = (MatMul(inverse, OneMatrix(1, cols)) if axis == 1
                  else MatMul(OneMatrix(rows, 1), Transpose(inverse)))
        return HadamardProduct(e, spread)


def _elementwise_op(op: str) -> bool:
    return op in ops.OPS and ops.OPS[op].elementwise


def to_sympy(expr: Expr):
    """The SymPy matrix expression of a matcalc expression.

    Matrix variables become `MatrixSymbol`s over the problem's dimension
    symbols, vectors n x 1 `MatrixSymbol`s, scalar variables real `Symbol`s;
    see the module's table for every operator. Raises `MatcalcError` for
    what SymPy cannot represent.
    """
    if not isinstance(expr, Expr):
        raise MatcalcError(f"to_sympy expects a matcalc expression, got {type(expr).__name__}")
    return _ToSympy().convert(expr)


# ------------------------------------------------------------ from_sympy ---

class _V:
    """A converted operand: the matcalc node and, for a vector, which way
    SymPy holds it ('col' for n x 1, 'row' for 1 x n)."""

    __slots__ = ("node", "orient")

    def __init__(self, node: Expr, orient: str | None = None):
        self.node = node
        self.orient = orient if node.ndim == 1 else None

    @property
    def scalar(self) -> bool:
        return not self.node.shape


def _is_ones(s, rows=None, cols=None) -> bool:
    if not isinstance(s, OneMatrix):
        return False
    return (rows is None or s.shape[0] == rows) and (cols is None or s.shape[1] == cols)


class _FromSympy:
    def __init__(self, scope: dict[str, Expr]):
        self.scope = scope
        self.memo: dict = {}

    def fail(self, s, why: str = "") -> MatcalcError:
        return MatcalcError(f"from_sympy cannot read {type(s).__name__} '{s}'"
                            + (f": {why}" if why else ""))

    # the orientation SymPy's shape implies for a matcalc vector
    def wrap(self, node: Expr, s) -> _V:
        if node.ndim == 1 and _is_matrix(s):
            return _V(node, "row" if s.shape[0] == 1 and s.shape[1] != 1 else "col")
        return _V(node, "col" if node.ndim == 1 else None)

    def __call__(self, s) -> _V:
        key = s
        if key in self.memo:
            return self.memo[key]
        out = self.convert(s)
        self.memo[key] = out
        return out

    def name(self, s) -> Expr:
        node = self.scope.get(s.name)
        if node is None:
            raise MatcalcError(f"from_sympy: '{s.name}' is not a name of the problem")
        return node

    def convert(self, s) -> _V:
        if isinstance(s, MatrixSymbol):
            node = self.name(s)
            expected = _column(node.shape) if node.shape else (1, 1)
            if tuple(s.shape) != tuple(expected) and node.ndim != 1:
                raise MatcalcError(f"from_sympy: '{s.name}' is {s.shape[0]} x {s.shape[1]} "
                                   f"in SymPy but {' x '.join(map(str, node.shape))} here")
            return self.wrap(node, s)
        if isinstance(s, sympy.Symbol):
            return _V(self.name(s))
        if getattr(s, "is_Number", False) or (isinstance(s, sympy.Expr) and not _is_matrix(s)
                                              and not s.free_symbols - self.dim_symbols()
                                              and not s.atoms(MatrixExpr)):
            return _V(const(s))
        if isinstance(s, (Identity, OneMatrix, ZeroMatrix)) and s.shape == (1, 1):
            return _V(const(0 if isinstance(s, ZeroMatrix) else 1))
        if isinstance(s, Identity):
            return _V(ops.eye(s.shape[0]))
        if isinstance(s, (OneMatrix, ZeroMatrix)):
            build = ops.ones if isinstance(s, OneMatrix) else ops.zeros
            rows, cols = s.shape
            if cols == 1 and rows != 1:
                return _V(build((rows,)), "col")
            if rows == 1 and cols != 1:
                return _V(build((cols,)), "row")
            return _V(build((rows, cols)))
        if isinstance(s, Transpose):
            v = self(s.arg)
            if v.orient:
                return _V(v.node, "row" if v.orient == "col" else "col")
            return _V(ops.transpose(v.node))
        if isinstance(s, Inverse):
            v = self(s.arg)
            return _V(ops.func("inv", v.node) if v.node.shape else ops.div(const(1), v.node))
        if isinstance(s, MatPow):
            return self.matpow(s)
        if isinstance(s, Trace):
            v = self(s.arg)
            return _V(v.node if v.scalar else ops.func("trace", v.node))
        if isinstance(s, Determinant):
            return _V(ops.func("det", self(s.arg).node))
        if isinstance(s, MatMul):
            return self.matmul(s)
        if isinstance(s, MatAdd):
            return self.add([self(t) for t in s.args], s)
        if isinstance(s, HadamardProduct):
            num = [t for t in s.args if not (isinstance(t, HadamardPower) and t.exp == -1)]
            den = [t.base for t in s.args if isinstance(t, HadamardPower) and t.exp == -1]
            if len(num) == 1 and len(den) == 1:  # a / b
                return self.wrap(self.broadcast_free(ops.div, [self(num[0]).node,
                                                               self(den[0]).node]), s)
            terms = [self(t) for t in s.args]
            return self.wrap(self.broadcast_free(ops.mul, [t.node for t in terms]), s)
        if isinstance(s, HadamardPower):
            base, e = self(s.base), self(s.exp)
            return self.wrap(ops.div(const(1), base.node) if e.node is const(-1)
                             else ops.power(base.node, e.node), s)
        if isinstance(s, ElementwiseApplyFunction):
            return self.applyfunc(s)
        if isinstance(s, DiagMatrix):
            return _V(ops.diag(self(s.args[0]).node))
        if isinstance(s, DiagonalOf):
            return _V(ops.diag(self(s.args[0]).node), "col")
        if isinstance(s, KroneckerProduct):
            node = self(s.args[0]).node
            for t in s.args[1:]:
                node = ops.kron(node, self(t).node)
            return _V(node)
        if isinstance(s, sympy.Add):
            return _V(ops.add(*(self(t).node for t in s.args)))
        if isinstance(s, sympy.Mul):
            return _V(self.quotient(s.args, []))
        if isinstance(s, sympy.Pow):
            return self.scalar_pow(s)
        if isinstance(s, (sympy.Max, sympy.Min)):
            name = "maximum" if isinstance(s, sympy.Max) else "minimum"
            args = [self(t).node for t in s.args]
            node = getattr(ops, name)(args[0], args[1])
            for t in args[2:]:
                node = getattr(ops, name)(node, t)
            return _V(node)
        if isinstance(s, sympy.log) and isinstance(s.args[0], Determinant):
            return _V(ops.func("logdet", self(s.args[0].arg).node))
        if isinstance(s, sympy.Function):
            return _V(self.scalar_function(s))
        raise self.fail(s)

    def dim_symbols(self) -> set:
        return {v.value for v in self.scope.values()
                if isinstance(v, Const) and isinstance(v.value, sympy.Symbol)}

    def scalar_pow(self, s) -> _V:
        base, e = s.args
        if e == sympy.Rational(1, 2) and isinstance(base, Trace):
            inner = base.arg  # sqrt(tr(XᵀX)) = norm(X)
            if isinstance(inner, MatMul) and len(inner.args) == 2 and \
                    inner.args[0] == Transpose(inner.args[1]):
                return _V(ops.func("norm", self(inner.args[1]).node))
        node = self.scalar_function(s)
        return _V(node)

    def template(self, s) -> Expr | None:
        """`s` as one of matcalc's functions of a scalar, or None."""
        w = sympy.Wild("w")
        for name in _READ_ORDER:
            if name in ("square", "sqrt"):
                continue  # powers of scalars stay powers
            match = s.match(FUNCTIONS[name](w))
            if match and w in match and FUNCTIONS[name](match[w]) == s:
                return ops.func(name, self(match[w]).node)
        return None

    def scalar_function(self, s) -> Expr:
        """A SymPy function of scalars as a matcalc function (or its formula)."""
        node = self.template(s)
        if node is not None:
            return node
        if isinstance(s, sympy.Pow):
            base, e = self(s.args[0]).node, self(s.args[1]).node
            if e is const(sympy.Rational(1, 2)):
                return ops.func("sqrt", base)
            return ops.div(const(1), base) if e is const(-1) else ops.power(base, e)
        if isinstance(s, sympy.Heaviside):
            return ops.func("step", self(s.args[0]).node)
        raise self.fail(s, "no matcalc function matches")

    def applyfunc(self, s) -> _V:
        f = s.function
        if not isinstance(f, sympy.Lambda):
            u = sympy.Dummy("u")
            f = sympy.Lambda(u, f(u))
        (u,), body = f.variables, f.expr
        inner = self(s.expr)
        if isinstance(body, (sympy.Max, sympy.Min)) and len(body.args) == 2 and u in body.args:
            other = body.args[1] if body.args[0] == u else body.args[0]
            if not other.free_symbols - self.dim_symbols():
                name = "maximum" if isinstance(body, sympy.Max) else "minimum"
                if other == 0 and name == "maximum":
                    pass  # relu(x) and maximum(x, 0) are one SymPy function; relu wins
                else:
                    return _V(getattr(ops, name)(inner.node, const(other)), inner.orient)
        w = sympy.Dummy("w")
        body = body.xreplace({u: w})
        if isinstance(s.expr, MatMul) and body == sympy.sqrt(w):  # sqrt(xᵀx) = norm(x)
            factors = s.expr.args
            if len(factors) == 2 and factors[0] == Transpose(factors[1]) and \
                    self(factors[1]).node.ndim == 1:
                return _V(ops.func("norm", self(factors[1]).node))
        for name in _READ_ORDER:
            if FUNCTIONS[name](w) == body:
                return _V(ops.func(name, inner.node), inner.orient)
        if isinstance(body, sympy.Pow) and body.args[0] == w and not body.args[1].free_symbols:
            return _V(ops.power(inner.node, const(body.args[1])), inner.orient)
        # any other function of one scalar: rebuild its formula around the argument
        placeholder = "__from_sympy_arg__"
        scope = dict(self.scope)
        scope[placeholder] = inner.node
        sub = _FromSympy(scope)
        sub.memo[sympy.Symbol(placeholder)] = inner
        return _V(sub(body.xreplace({w: sympy.Symbol(placeholder)})).node, inner.orient)

    def matpow(self, s) -> _V:
        base, e = s.args
        v = self(base)
        if v.scalar:
            if e == sympy.Rational(1, 2):
                if isinstance(base, MatMul) and len(base.args) == 2 and \
                        base.args[0] == Transpose(base.args[1]):
                    return _V(ops.func("norm", self(base.args[1]).node))
                return _V(ops.func("sqrt", v.node))
            return _V(ops.div(const(1), v.node) if e == -1 else ops.power(v.node, self(e).node))
        if e == -1:
            return _V(ops.func("inv", v.node))
        if e.is_Integer and e > 0:
            node = v.node
            for _ in range(int(e) - 1):
                node = ops.matmul(node, v.node)
            return _V(node)
        if e.is_Integer and e < 0:
            return self.matpow(MatPow(Inverse(base), -e))
        raise self.fail(s, "only integer matrix powers")

    def broadcast_free(self, build, nodes: list[Expr]) -> Expr:
        """`build(*nodes)` with the OneMatrix spreading that SymPy needs for
        broadcasting taken out again (NumPy broadcasts by itself)."""
        shape = broadcast(*(n.shape for n in nodes))
        out = []
        for n in nodes:
            others = [m.shape for m in nodes if m is not n]
            if isinstance(n, Apply) and n.op == "ones" and broadcast((), *others) == shape:
                n = const(1)
            if isinstance(n, Apply) and n.op == "mul" and any(
                    isinstance(a, Apply) and a.op == "ones" for a in n.args):
                rest = [a for a in n.args if not (isinstance(a, Apply) and a.op == "ones")]
                others = [m.shape for m in nodes if m is not n]
                if rest and broadcast(*others, *(r.shape for r in rest)) == shape:
                    n = rest[0] if len(rest) == 1 else ops.mul(*rest)
            out.append(n)
        return build(*out)

    def add(self, terms: list[_V], s) -> _V:
        return self.wrap(self.broadcast_free(ops.add, [t.node for t in terms]), s)

    def matmul(self, s) -> _V:
        coefficient, factors = [], []
        for t in s.args:
            (factors if _is_matrix(t) else coefficient).append(t)
        # sums: 1ᵀ X 1, 1ᵀ x, Xᵀ 1, X 1 (SymPy's OneMatrix vectors)
        node = self.chain(factors)
        if coefficient:
            node = _V(self.quotient(coefficient, [node.node]), node.orient)
        return node

    def quotient(self, factors: list, nodes: list) -> Expr:
        """The product of SymPy scalar `factors` and matcalc `nodes`, with
        factors d**-1 (d not a number) as one division: a * b / d."""
        num, den = [], []
        for t in factors:
            if isinstance(t, Expr):
                num.append(t)
            elif isinstance(t, sympy.Pow) and t.args[1] == -1 and not t.args[0].is_Number \
                    and not self.template(t):
                den.append(self(t.args[0]).node)
            else:
                num.append(self(t).node)
        num += nodes
        node = ops.mul(*num) if num else const(1)
        return ops.div(node, ops.mul(*den)) if den else node

    def chain(self, factors: list) -> _V:
        if len(factors) == 3 and _is_ones(factors[0], 1) and _is_ones(factors[2], None, 1) \
                and not _is_ones(factors[1]):
            return _V(ops.reduce_sum(self(factors[1]).node))
        if len(factors) == 2 and _is_ones(factors[0], 1) and not _is_ones(factors[1]):
            v = self(factors[1])
            if v.node.ndim == 1:
                return _V(ops.reduce_sum(v.node))
            if v.node.ndim == 2:
                return _V(ops.reduce_sum(v.node, 0), "row")
        if len(factors) == 2 and _is_ones(factors[1], None, 1) and not _is_ones(factors[0]):
            if isinstance(factors[0], Transpose) and self(factors[0].arg).node.ndim == 2:
                return _V(ops.reduce_sum(self(factors[0].arg).node, 0), "col")
            v = self(factors[0])
            if v.node.ndim == 2:
                return _V(ops.reduce_sum(v.node, 1), "col")
            if v.orient == "row":
                return _V(ops.reduce_sum(v.node))
        current = self(factors[0])
        for f in factors[1:]:
            current = self.product(current, self(f), f)
        return current

    def product(self, x: _V, y: _V, s) -> _V:
        a, b = x.node, y.node
        if x.scalar or y.scalar:
            return _V(ops.mul(a, b), x.orient or y.orient)
        if x.orient == "col" and y.orient == "row":
            if isinstance(a, Apply) and a.op == "ones" and isinstance(b, Apply) and b.op == "ones":
                return _V(ops.ones((a.shape[0], b.shape[0])))
            if isinstance(a, Apply) and a.op == "ones":  # 1 bᵀ: b spread over rows
                return _V(ops.mul(ops.ones((a.shape[0], b.shape[0])), b))
            if isinstance(b, Apply) and b.op == "ones":  # a 1ᵀ: a spread over columns
                return _V(ops.mul(ops.ones((a.shape[0], b.shape[0])), ops.col(a)))
            return _V(ops.outer(a, b))
        if x.orient == "row" and y.orient == "col":
            return _V(ops.matmul(a, b))
        if x.orient == "row" and b.ndim == 2:
            return _V(ops.matmul(a, b), "row")
        if a.ndim == 2 and y.orient == "col":
            return _V(ops.matmul(a, b), "col")
        if a.ndim == 2 and b.ndim == 2:
            return _V(ops.matmul(a, b))
        if a.ndim == 2 and y.orient == "row":  # (n x 1) times a row
            return _V(ops.matmul(a, ops.row(b)))
        if x.orient == "col" and b.ndim == 2:  # a column times a 1 x m matrix
            return _V(ops.matmul(ops.col(a), b))
        raise self.fail(s, "shapes do not compose")


def _own_dimensions(sexpr, scope: dict[str, Expr]):
    """`sexpr` with each symbol named like a dimension of `scope` replaced by
    that dimension: a plain `sympy.symbols("N D")` is the problem's N and D
    (a dimension is a positive integer; SymPy's symbols carry no such
    assumption, and SymPy tells symbols apart by name and assumptions)."""
    dims = {v.value.name: v.value for v in scope.values()
            if isinstance(v, Const) and isinstance(v.value, sympy.Symbol)}
    same = {s: dims[s.name] for s in sexpr.atoms(sympy.Symbol)
            if s.name in dims and s != dims[s.name]}
    return sexpr.xreplace(same) if same else sexpr


def from_sympy(sexpr, scope: dict[str, Expr]) -> Expr:
    """The matcalc expression of a SymPy matrix expression over `scope`'s
    names (`Problem.scope()`: variables, intermediates, dimensions), built
    through matcalc's canonicalising builders. Reads the subset `to_sympy`
    writes, and SymPy's own results over it (`A*x + A.T*x`)."""
    if not isinstance(sexpr, sympy.Basic):
        sexpr = sympy.sympify(sexpr)
    try:
        return _FromSympy(scope)(_own_dimensions(sexpr, scope)).node
    except MatcalcError:
        raise
    except (TypeError, ValueError, AttributeError) as err:
        raise MatcalcError(f"from_sympy cannot read '{sexpr}': {err}") from None
