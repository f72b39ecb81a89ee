"""How the array-API target writes each operator, and the helper functions
the generated module defines.

Every call goes through the namespace `xp` of the inputs (`array_namespace`
from array-api-compat), so the module runs on any library the Python array
API standard covers. `FORMS` lists the exceptions to `xp.name(x, key=value)`;
where the standard lacks a function (kron, diag of a vector, logsumexp,
matrix chains, slogdet on Dask) a helper in `HELPERS` computes it with `xp`
alone. Constant arrays take the inputs' floating type and device.
"""

from __future__ import annotations

from . import precedence as P
from .forms import PYTHON_SYNTAX, Form, Forms, call, kwargs, shaped


def default(name: str) -> Form:
    """`xp.name(x, key=value)`."""
    return call("xp." + name)


def _dims(name: str) -> Form:
    """xp.ones((N, D), dtype=dtype, device=device): the inputs' type, device."""
    return shaped(f"xp.{name}", "dtype=dtype, device=device")


def _helper(name: str) -> Form:
    """`_name(xp, x, ...)`: a helper function taking the namespace."""
    return Form(lambda a, p: f"_{name}(xp, {', '.join(a)}{kwargs(p)})")


FORMS = Forms(default, {
    **PYTHON_SYNTAX,
    "zeros": _dims("zeros"),
    "ones": _dims("ones"),
    "eye": Form(lambda a, p: f"xp.eye({p['shape'][0]}, dtype=dtype, device=device)"),
    "arcsin": call("xp.asin"),
    "arccos": call("xp.acos"),
    "arctan": call("xp.atan"),
    "trace": call("xp.linalg.trace"),
    "diag": call("xp.linalg.diagonal"),
    "inv": call("xp.linalg.inv"),
    "solve": _helper("solve"),
    "norm": call("xp.linalg.vector_norm"),
    "norm1": Form("xp.sum(xp.abs({0}))"),
    "relu": Form("xp.maximum({0}, 0.0)"),
    "softplus": Form("xp.logaddexp({0}, 0.0)"),
    "outer": Form("{0}[:, None] * {1}[None, :]", P.MUL, P.POSTFIX),
    **{name: _helper(name) for name in (
        "det", "logdet", "sigmoid", "step", "softmax", "logsumexp", "diagm", "kron",
        "unkron_left", "unkron_right")},
})

# The helper functions the forms call, by operator (a lowered product chain
# is "multi_dot").
HELPERS = {
    "sigmoid": '''
def _sigmoid(xp, x):
    """σ(x) = 1 / (1 + e^-x), the exponent capped at the largest finite
    float's log (never an overflow), one exp pass."""
    cap = 88.0 if x.dtype == xp.float32 else 709.0
    return 1 / (1 + xp.exp(xp.minimum(-x, cap)))
''',
    "step": '''
def _step(xp, x):
    """step(x) = 1 where x > 0, else 0, in x's floating type (one pass)."""
    return xp.astype(x > 0, x.dtype)
''',
    "softmax": '''
def _softmax(xp, x, axis=None):
    """exp(x) / sum(exp(x), axis), shifted by the max for stability."""
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)
''',
    "logsumexp": '''
def _logsumexp(xp, x, axis=None):
    """log(sum(exp(x), axis)), shifted by the max for stability."""
    m = xp.max(x, axis=axis, keepdims=True)
    s = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return xp.sum(s, axis=axis)  # drops the kept axis (one element)
''',
    "solve": '''
def _solve(xp, a, b):
    """A⁻¹ b, for a matrix or a vector b."""
    if b.ndim == 1:
        return xp.linalg.solve(a, b[:, None])[:, 0]
    return xp.linalg.solve(a, b)
''',
    "det": '''
def _det(xp, a):
    """det(A); exp(logdet A) by Cholesky (A spd) where the namespace has no
    det (Dask)."""
    if hasattr(xp.linalg, "det"):
        return xp.linalg.det(a)
    return xp.exp(_logdet(xp, a))
''',
    "logdet": '''
def _logdet(xp, a):
    """log|det A|; 2 Σ log diag(chol A) (A spd) where the namespace has no
    slogdet (Dask)."""
    if hasattr(xp.linalg, "slogdet"):
        return xp.linalg.slogdet(a)[1]
    return 2 * xp.sum(xp.log(xp.linalg.diagonal(xp.linalg.cholesky(a))))
''',
    "diagm": '''
def _diagm(xp, x):
    """diag(x): the matrix with x on its diagonal, x_i δ_ij."""
    eye = xp.eye(x.shape[0], dtype=x.dtype, device=_device_of(x))
    return x[:, None] * eye
''',
    "kron": '''
def _kron(xp, a, b):
    """A ⊗ B = [A_ij B]: the product a_ij b_kl at (i p + k, j q + l)."""
    (m, n), (p, q) = a.shape, b.shape
    return xp.reshape(a[:, None, :, None] * b[None, :, None, :], (m * p, n * q))
''',
    "unkron_left": '''
def _unkron_left(xp, g, b):
    """The adjoint of kron(a, b) for a: Σ_kl G[ik, jl] b_kl."""
    (p, q), (mp, nq) = b.shape, g.shape
    g = xp.reshape(g, (mp // p, p, nq // q, q))
    return xp.sum(g * b[None, :, None, :], axis=(1, 3))
''',
    "unkron_right": '''
def _unkron_right(xp, g, a):
    """The adjoint of kron(a, b) for b: Σ_ij a_ij G[ik, jl]."""
    (m, n), (mp, nq) = a.shape, g.shape
    g = xp.reshape(g, (m, mp // m, n, nq // n))
    return xp.sum(g * a[:, None, :, None], axis=(0, 2))
''',
    "multi_dot": '''
def _multi_dot(*arrays):
    """A₁ A₂ … Aₙ in the order of fewest multiplications for the arrays'
    shapes (as numpy.linalg.multi_dot; a 1-D end is a row or column)."""
    dims = [1 if arrays[0].ndim == 1 else arrays[0].shape[0]]
    dims += [a.shape[-1] for a in arrays[:-1]] + [arrays[-1].shape[-1]]
    dims[-1] = 1 if arrays[-1].ndim == 1 else dims[-1]
    n = len(arrays)
    cost = {(i, i): (0, None) for i in range(n)}
    for span in range(1, n):
        for i in range(n - span):
            j = i + span
            cost[i, j] = min((cost[i, k][0] + cost[k + 1, j][0]
                              + dims[i] * dims[k + 1] * dims[j + 1], k) for k in range(i, j))

    def product(i, j):
        if i == j:
            return arrays[i]
        k = cost[i, j][1]
        return product(i, k) @ product(k + 1, j)
    return product(0, n - 1)
''',
}
