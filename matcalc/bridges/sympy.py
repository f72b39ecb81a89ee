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
  (`1/(1 + exp(-u))`, `Max(u, 0)`, `Heaviside(u, 0)` for `step`, ...): by
  default SymPy's function of the same name (`sympy.exp`), else an undefined
  `sympy.Function` of that name, so an operator added to the table at run
  time is written and read back too;
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
`solve(A, B)` as `inv(A) @ B`, `maximum(x, 0)` as `relu(x)`, the
written-out `norm1`, `softmax` and `logsumexp` as their formulas, and of a
scalar a function SymPy writes as a power (`square(c)` is `c**2`) as that
power: equal in value, not the same node. Everything else comes back as the same node.

Where each part lives: `sympy_write.FORMS` maps an operator to its writer
(the forms above); `sympy_forms.SCALARS` lists the elementwise functions
whose SymPy function is not `sympy.<name>`; `sympy_read.READERS` maps a
SymPy class to its reader. An elementwise operator needs no entry in any.
"""

from __future__ import annotations

import sympy

from ..errors import MatcalcError
from ..ir.expr import Const, Expr
from .sympy_read import Reader
from .sympy_write import write_all

__all__ = ["to_sympy", "from_sympy"]


def to_sympy(expr: Expr):
    """The SymPy matrix expression of a matcalc expression.

    Matrix variables become `MatrixSymbol`s over the problem's dimension
    symbols, vectors n x 1 `MatrixSymbol`s, scalar variables real `Symbol`s;
    see the module's table for every operator. Raises `MatcalcError` for
    what SymPy cannot represent.
    """
    if not isinstance(expr, Expr):
        raise MatcalcError(f"to_sympy expects a matcalc expression, got {type(expr).__name__}")
    return write_all(expr)


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
        return Reader(scope)(_own_dimensions(sexpr, scope)).node
    except MatcalcError:
        raise
    except (TypeError, ValueError, AttributeError) as err:
        raise MatcalcError(f"from_sympy cannot read '{sexpr}': {err}") from None
