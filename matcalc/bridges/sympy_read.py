"""Reading SymPy matrix expressions into matcalc: a dispatch by SymPy class.

`READERS` maps a SymPy class to the method that reads it; a SymPy object
is read by the entry of the most specific class in its method resolution
order (`Inverse` before `MatPow`, `MatMul` before `Mul`), after one rule
before all: a scalar expression over numbers and dimensions is a constant.
Every node is built through matcalc's builders, so the result is canonical.

SymPy holds vectors as n x 1 or 1 x n matrices: a read operand (`_V`)
keeps, for a vector, which of the two SymPy had, so products come back as
`@`, `outer` or a sum, and the `OneMatrix` products that write broadcasting
and sums (1 bᵀ, 1ᵀ X 1, Xᵀ 1) come back as broadcasting and `sum`.
"""

from __future__ import annotations

from typing import Callable

import sympy
from sympy import (Determinant, HadamardPower, HadamardProduct, Identity, Inverse,
                   KroneckerProduct, MatAdd, MatMul, MatPow, MatrixExpr, MatrixSymbol,
                   OneMatrix, Trace, Transpose, ZeroMatrix)
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalOf

from .. import ops
from ..errors import MatcalcError
from ..ir.expr import Const, Expr, const, is_op
from ..ir.shapes import broadcast
from .sympy_forms import column, is_matrix, is_power, read_order

READERS: dict[type, Callable] = {}


def reads(*classes: type):
    """Register the decorated method as the reader of the SymPy `classes`."""
    def register(method: Callable) -> Callable:
        for cls in classes:
            READERS[cls] = method
        return method
    return register


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


def _is_gram(s) -> bool:
    """Whether `s` is the product Aᵀ A."""
    return isinstance(s, MatMul) and len(s.args) == 2 and s.args[0] == Transpose(s.args[1])


def _is_ones_node(n: Expr) -> bool:
    return is_op(n, "ones")


class Reader:
    """Reads SymPy expressions over the names of `scope`, each subexpression once."""

    def __init__(self, scope: dict[str, Expr]):
        self.scope = scope
        self.memo: dict = {}

    def fail(self, s, why: str = "") -> MatcalcError:
        return MatcalcError(f"from_sympy cannot read {type(s).__name__} '{s}'"
                            + (f": {why}" if why else ""))

    def wrap(self, node: Expr, s) -> _V:
        """`node` with the orientation SymPy's shape of `s` implies for a vector."""
        if node.ndim == 1 and is_matrix(s):
            return _V(node, "row" if s.shape[0] == 1 and s.shape[1] != 1 else "col")
        return _V(node, "col" if node.ndim == 1 else None)

    def __call__(self, s) -> _V:
        if s not in self.memo:
            self.memo[s] = self.convert(s)
        return self.memo[s]

    def convert(self, s) -> _V:
        """`s` read by the reader of its most specific registered class."""
        if not isinstance(s, sympy.Symbol) and self.constant(s):
            return _V(const(s))
        for cls in type(s).__mro__:
            read = READERS.get(cls)
            if read is not None:
                return read(self, s)
        raise self.fail(s)

    def constant(self, s) -> bool:
        """Whether `s` is a number, or a scalar over numbers and dimensions."""
        return getattr(s, "is_Number", False) or (
            isinstance(s, sympy.Expr) and not is_matrix(s)
            and not s.free_symbols - self.dim_symbols() and not s.atoms(MatrixExpr))

    def dim_symbols(self) -> set:
        return {v.value for v in self.scope.values()
                if isinstance(v, Const) and isinstance(v.value, sympy.Symbol)}

    def name(self, s) -> Expr:
        node = self.scope.get(s.name)
        if node is None:
            raise MatcalcError(f"from_sympy: '{s.name}' is not a name of the problem")
        return node

    # ---------------------------------------------------- names, constants ---

    @reads(MatrixSymbol)
    def matrix_symbol(self, s) -> _V:
        node = self.name(s)
        expected = column(node.shape) if node.shape else (1, 1)
        if tuple(s.shape) != tuple(expected) and node.ndim != 1:
            raise MatcalcError(f"from_sympy: '{s.name}' is {s.shape[0]} x {s.shape[1]} "
                               f"in SymPy but {' x '.join(map(str, node.shape))} here")
        return self.wrap(node, s)

    @reads(sympy.Symbol)
    def symbol(self, s) -> _V:
        return _V(self.name(s))

    @reads(Identity)
    def identity(self, s) -> _V:
        return _V(const(1) if s.shape == (1, 1) else ops.eye(s.shape[0]))

    @reads(OneMatrix, ZeroMatrix)
    def constant_matrix(self, s) -> _V:
        """1 and 0 matrices: ones/zeros, a 1 x 1 one the number, n x 1 a vector."""
        if s.shape == (1, 1):
            return _V(const(0 if isinstance(s, ZeroMatrix) else 1))
        build = ops.ones if isinstance(s, OneMatrix) else ops.zeros
        rows, cols = s.shape
        if cols == 1 and rows != 1:
            return _V(build((rows,)), "col")
        if rows == 1 and cols != 1:
            return _V(build((cols,)), "row")
        return _V(build((rows, cols)))

    # ------------------------------------------------ matrix functions ---

    @reads(Transpose)
    def transpose(self, s) -> _V:
        v = self(s.arg)
        if v.orient:
            return _V(v.node, "row" if v.orient == "col" else "col")
        return _V(ops.transpose(v.node))

    @reads(Inverse)
    def inverse(self, s) -> _V:
        v = self(s.arg)
        return _V(ops.func("inv", v.node) if v.node.shape else ops.div(const(1), v.node))

    @reads(Trace)
    def trace(self, s) -> _V:
        v = self(s.arg)
        return _V(v.node if v.scalar else ops.func("trace", v.node))

    @reads(Determinant)
    def determinant(self, s) -> _V:
        return _V(ops.func("det", self(s.arg).node))

    @reads(DiagMatrix)
    def diag_matrix(self, s) -> _V:
        return _V(ops.diag(self(s.args[0]).node))

    @reads(DiagonalOf)
    def diagonal_of(self, s) -> _V:
        return _V(ops.diag(self(s.args[0]).node), "col")

    @reads(KroneckerProduct)
    def kronecker(self, s) -> _V:
        node = self(s.args[0]).node
        for t in s.args[1:]:
            node = ops.kron(node, self(t).node)
        return _V(node)

    @reads(MatPow)
    def matpow(self, s) -> _V:
        """Aᵏ as a product of k factors (A⁻¹ for k = -1); of a 1 x 1 matrix a power."""
        base, e = s.args
        v = self(base)
        if v.scalar:
            if e == sympy.Rational(1, 2):
                if _is_gram(base):
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

    # -------------------------------------------------- elementwise ---

    @reads(MatAdd)
    def matadd(self, s) -> _V:
        terms = [self(t).node for t in s.args]
        return self.wrap(self.broadcast_free(ops.add, terms), s)

    @reads(HadamardProduct)
    def hadamard(self, s) -> _V:
        """a ∘ b ∘ ...; a ∘ b^∘(-1) is a / b."""
        num = [t for t in s.args if not (isinstance(t, HadamardPower) and t.exp == -1)]
        den = [t.base for t in s.args if isinstance(t, HadamardPower) and t.exp == -1]
        if len(num) == 1 and len(den) == 1:
            return self.wrap(self.broadcast_free(ops.div, [self(num[0]).node,
                                                           self(den[0]).node]), s)
        terms = [self(t) for t in s.args]
        return self.wrap(self.broadcast_free(ops.mul, [t.node for t in terms]), s)

    @reads(HadamardPower)
    def hadamard_power(self, s) -> _V:
        base, e = self(s.base), self(s.exp)
        return self.wrap(ops.div(const(1), base.node) if e.node is const(-1)
                         else ops.power(base.node, e.node), s)

    @reads(ElementwiseApplyFunction)
    def applyfunc(self, s) -> _V:
        """f applied elementwise: maximum/minimum with a constant, ‖x‖ = √(xᵀx),
        an elementwise operator of the table, a power, or f's formula."""
        f = s.function
        if not isinstance(f, sympy.Lambda):
            u = sympy.Dummy("u")
            f = sympy.Lambda(u, f(u))
        (u,), body = f.variables, f.expr
        inner = self(s.expr)
        extremum = self.extremum_with_constant(body, u, inner)
        if extremum is not None:
            return extremum
        w = sympy.Dummy("w")
        body = body.xreplace({u: w})
        if _is_gram(s.expr) and body == sympy.sqrt(w) and \
                self(s.expr.args[1]).node.ndim == 1:
            return _V(ops.func("norm", self(s.expr.args[1]).node))
        for name, function in read_order():
            if function(w) == body:
                return _V(ops.func(name, inner.node), inner.orient)
        if isinstance(body, sympy.Pow) and body.args[0] == w and not body.args[1].free_symbols:
            return _V(ops.power(inner.node, const(body.args[1])), inner.orient)
        return _V(self.formula(body, w, inner), inner.orient)

    def extremum_with_constant(self, body, u, inner: _V) -> _V | None:
        """max(u, c) or min(u, c) of a constant c as maximum/minimum; not
        max(u, 0), which is relu (one SymPy function, relu wins)."""
        if not (isinstance(body, (sympy.Max, sympy.Min)) and len(body.args) == 2
                and u in body.args):
            return None
        other = body.args[1] if body.args[0] == u else body.args[0]
        if other.free_symbols - self.dim_symbols():
            return None
        name = "maximum" if isinstance(body, sympy.Max) else "minimum"
        if other == 0 and name == "maximum":
            return None
        return _V(getattr(ops, name)(inner.node, const(other)), inner.orient)

    def formula(self, body, w, inner: _V) -> Expr:
        """Any other function of one scalar: its formula rebuilt around the argument."""
        placeholder = "__from_sympy_arg__"
        scope = dict(self.scope)
        scope[placeholder] = inner.node
        sub = Reader(scope)
        sub.memo[sympy.Symbol(placeholder)] = inner
        return sub(body.xreplace({w: sympy.Symbol(placeholder)})).node

    def broadcast_free(self, build, nodes: list[Expr]) -> Expr:
        """`build(*nodes)` with the OneMatrix spreading that SymPy needs for
        broadcasting taken out again (NumPy broadcasts by itself)."""
        shape = broadcast(*(n.shape for n in nodes))
        out = []
        for n in nodes:
            others = [m.shape for m in nodes if m is not n]
            if _is_ones_node(n) and broadcast((), *others) == shape:
                n = const(1)
            if is_op(n, "mul") and any(map(_is_ones_node, n.args)):
                rest = [a for a in n.args if not _is_ones_node(a)]
                if rest and broadcast(*others, *(r.shape for r in rest)) == shape:
                    n = rest[0] if len(rest) == 1 else ops.mul(*rest)
            out.append(n)
        return build(*out)

    # ---------------------------------------------------------- scalars ---

    @reads(sympy.Add)
    def scalar_add(self, s) -> _V:
        return _V(ops.add(*(self(t).node for t in s.args)))

    @reads(sympy.Mul)
    def scalar_mul(self, s) -> _V:
        return _V(self.quotient(s.args, []))

    @reads(sympy.Pow)
    def scalar_pow(self, s) -> _V:
        """xᵉ; √tr(XᵀX) is norm(X)."""
        base, e = s.args
        if e == sympy.Rational(1, 2) and isinstance(base, Trace) and _is_gram(base.arg):
            return _V(ops.func("norm", self(base.arg.args[1]).node))
        return _V(self.scalar_function(s))

    @reads(sympy.Max, sympy.Min)
    def extremum(self, s) -> _V:
        build = ops.maximum if isinstance(s, sympy.Max) else ops.minimum
        args = [self(t).node for t in s.args]
        node = build(args[0], args[1])
        for t in args[2:]:
            node = build(node, t)
        return _V(node)

    @reads(sympy.log)
    def log(self, s) -> _V:
        """log(det X) is logdet(X); any other log a function of a scalar."""
        if isinstance(s.args[0], Determinant):
            return _V(ops.func("logdet", self(s.args[0].arg).node))
        return _V(self.scalar_function(s))

    @reads(sympy.Function)
    def function(self, s) -> _V:
        return _V(self.scalar_function(s))

    def template(self, s) -> Expr | None:
        """`s` as one of matcalc's elementwise functions of a scalar, or None;
        a power of a scalar stays a power (sqrt, square are not read here)."""
        w = sympy.Wild("w")
        for name, function in read_order():
            if is_power(function):
                continue
            match = s.match(function(w))
            if match and w in match and function(match[w]) == s:
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

    # --------------------------------------------------------- products ---

    @reads(MatMul)
    def matmul(self, s) -> _V:
        """A matrix product: its scalar coefficient times the chain of matrices."""
        coefficient, factors = [], []
        for t in s.args:
            (factors if is_matrix(t) else coefficient).append(t)
        node = self.chain(factors)
        if coefficient:
            node = _V(self.quotient(coefficient, [node.node]), node.orient)
        return node

    def quotient(self, factors: list, nodes: list) -> Expr:
        """The product of SymPy scalar `factors` and matcalc `nodes`, with
        factors d**-1 (d not a number) as one division: a * b / d."""
        num, den = [], []
        for t in factors:
            if isinstance(t, sympy.Pow) and t.args[1] == -1 and not t.args[0].is_Number \
                    and not self.template(t):
                den.append(self(t.args[0]).node)
            else:
                num.append(self(t).node)
        num += nodes
        node = ops.mul(*num) if num else const(1)
        return ops.div(node, ops.mul(*den)) if den else node

    def chain(self, factors: list) -> _V:
        """A product of matrices; 1ᵀ X 1, 1ᵀ x, 1ᵀ X, Xᵀ 1, X 1 are sums."""
        total = self.sum_of(factors)
        if total is not None:
            return total
        current = self(factors[0])
        for f in factors[1:]:
            current = self.product(current, self(f), f)
        return current

    def sum_of(self, factors: list) -> _V | None:
        """The sum a product with `OneMatrix` vectors writes, or None."""
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
        return None

    def product(self, x: _V, y: _V, s) -> _V:
        """x y by orientation: column times row is outer (1 bᵀ broadcasts b),
        row times column a dot product, matrices and vectors `@`."""
        a, b = x.node, y.node
        if x.scalar or y.scalar:
            return _V(ops.mul(a, b), x.orient or y.orient)
        if x.orient == "col" and y.orient == "row":
            return _V(self.outer(a, b))
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

    @staticmethod
    def outer(a: Expr, b: Expr) -> Expr:
        """a bᵀ: outer(a, b), or with a vector of ones the other spread."""
        if _is_ones_node(a) and _is_ones_node(b):
            return ops.ones((a.shape[0], b.shape[0]))
        if _is_ones_node(a):  # 1 bᵀ: b spread over rows
            return ops.mul(ops.ones((a.shape[0], b.shape[0])), b)
        if _is_ones_node(b):  # a 1ᵀ: a spread over columns
            return ops.mul(ops.ones((a.shape[0], b.shape[0])), ops.col(a))
        return ops.outer(a, b)
