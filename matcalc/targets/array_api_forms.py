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
from .einsum_forms import ARRAY_API_EINSUM, axes_call, tensordot_call
from ..ops.indexing import key_code, key_text, negative_step
from .forms import (FORWARD_KEY, PYTHON_SYNTAX, Form, Forms, _inserted, call, joined, kwargs,
                    numbered, reshaped, shaped, sizes)


def default(name: str) -> Form:
    """`xp.name(x, key=value)`."""
    return call("xp." + name)


def _dims(name: str) -> Form:
    """xp.ones((N, D), dtype=dtype, device=device): the inputs' type, device."""
    return shaped(f"xp.{name}", "dtype=dtype, device=device")


def _helper(name: str) -> Form:
    """`_name(xp, x, ...)`: a helper function taking the namespace."""
    return Form(lambda a, p: f"_{name}(xp, {', '.join(a)}{kwargs(p)})")


def _full(value: str, shape: str) -> str:
    """An array of `shape` filled with `value`: `xp.full` of a Python number
    (N - 1 of the sizes too), else (an array scalar, 1 / xp.asarray(N - 1,
    ...), which the standard's `full` does not take) ones times it."""
    if "xp." not in value:
        return f"xp.full({shape}, {value}, dtype=dtype, device=device)"
    return f"({value}) * xp.ones({shape}, dtype=dtype, device=device)"


FORMS = Forms(default, {
    **PYTHON_SYNTAX,
    "zeros": _dims("zeros"),
    "ones": _dims("ones"),
    "eye": Form(lambda a, p: f"xp.eye({p['shape'][0]}, dtype=dtype, device=device)"),
    "arcsin": call("xp.asin"),
    "arccos": call("xp.acos"),
    "arctan": call("xp.atan"),
    "arcsinh": call("xp.asinh"),
    "arccosh": call("xp.acosh"),
    "arctanh": call("xp.atanh"),
    "eye_rect": Form(lambda a, p: f"_eye_rect(xp, {p['shape'][0]}, {p['shape'][1]}, dtype, "
                     "device)"),
    "cumsum": Form(lambda a, p: f"xp.cumulative_sum({a[0]}, axis={p['axis']})"),
    "trace": call("xp.linalg.trace"),
    "diag": call("xp.linalg.diagonal"),
    "solve": _helper("solve"),
    "norm": call("xp.linalg.vector_norm"),
    "norm1": Form("xp.sum(xp.abs({0}))"),
    "relu": Form("xp.maximum({0}, 0.0)"),
    "softplus": Form("xp.logaddexp({0}, 0.0)"),
    "elu": numbered("_elu", "elu", "alpha", "xp, "),
    "leaky_relu": numbered("_leaky_relu", "leaky_relu", "negative_slope", "xp, "),
    "outer": Form("{0}[:, None] * {1}[None, :]", P.MUL, P.POSTFIX),
    "contract": Form(lambda a, p: f'_einsum(xp, "{p["spec"]}", {", ".join(a)})'),
    "permute": axes_call("xp.permute_dims"),
    "matrix_transpose": call("xp.matrix_transpose"),
    # The standard's index names every axis: `...` stands for those after the last.
    "expand_dims": Form(lambda a, p: f"{a[0]}[{_inserted(p['axis'])}, ...]", P.POSTFIX,
                        P.POSTFIX),
    "tensordot": tensordot_call("xp", "axes", "xp.permute_dims("),
    "reshape": reshaped("xp.reshape"),
    "concatenate": joined("xp.concat"),
    # the standard indexes every axis: a trailing `...` takes those not named;
    # PyTorch's slices step forwards only: x[::-1] goes through _index
    "index": Form(lambda a, p: f"_index(xp, {a[0]}, {key_code(p['key'])})"
                  if negative_step(p["key"]) else f"{a[0]}[{key_text(p['key'])}, ...]",
                  P.POSTFIX, P.POSTFIX),
    "gather": _helper("gather"),
    "unindex": Form(lambda a, p: f"_unindex(xp, {a[0]}, {sizes(p['shape'])}, "
                    f"{key_code(p['key'])})"),
    "scatter_add": Form(lambda a, p: f"_scatter_add(xp, {a[0]}, {a[1]}, {sizes(p['shape'])})"),
    "broadcast": Form(lambda a, p: f"xp.broadcast_to({a[0]}, {sizes(p['shape'])})"),
    "broadcast_copy": Form(lambda a, p: f"_copy(xp, xp.broadcast_to({a[0]}, "
                           f"{sizes(p['shape'])}))"),
    "copy": _helper("copy"),
    "full": Form(lambda a, p: _full(a[0], sizes(p["shape"]))),
    "indicator": Form("xp.astype({0}, dtype)"),
    **{name: _helper(name) for name in (
        "inv", "det", "logdet", "sigmoid", "silu", "gelu", "step", "softmax", "logsumexp", "diagm", "kron",
        "unkron_left", "unkron_right", "erf", "triu", "tril", "revcumsum")},
})

# The helper functions the forms call, by operator (a lowered product chain
# is "multi_dot").
HELPERS = {
    "copy": '''
def _copy(xp, x):
    """x's values in a new array: the caller's own gradient. A PyTorch
    tensor is cloned (its autograd graph kept), as xp.asarray(x,
    copy=True) does, which since torch 2.13 warns when x requires grad."""
    from array_api_compat import is_torch_array
    return x.clone() if is_torch_array(x) else xp.asarray(x, copy=True)
''',
    "gather": '''
def _gather(xp, table, idx):
    """table[idx] along the first axis: xp.take of the flattened indices."""
    rows = xp.take(table, xp.reshape(idx, (-1,)), axis=0)
    return xp.reshape(rows, tuple(idx.shape) + tuple(table.shape[1:]))
''',
    "scatter_add": '''
def _scatter_add(xp, g, idx, shape):
    """Zeros of `shape` with each g[i] (broadcast to the rows idx names)
    added at the row idx[i], repeated rows adding up: the adjoint of
    table[idx]. The standard has no scatter: NumPy's bincount, PyTorch's
    index_add and JAX's .at[].add where xp is theirs; else onehot(idx)ᵀ g
    (exact sums), the one-hot matrix made 2**22 entries at a time."""
    import math
    from array_api_compat import (is_jax_namespace, is_numpy_namespace,
                                  is_torch_namespace)
    n, rows, width = math.prod(idx.shape), shape[0], math.prod(shape[1:])
    flat = xp.reshape(idx, (n,))
    if flat.dtype not in (xp.int64, xp.int32):  # int8 or uint8: no overflow
        flat = xp.astype(flat, xp.int64)
    flat = flat % rows  # negative indices count from the end
    g = xp.broadcast_to(g, tuple(idx.shape) + tuple(shape[1:]))
    g = xp.reshape(g, (n, width))
    if is_numpy_namespace(xp):
        import numpy as np
        at = (np.asarray(flat, dtype=np.intp)[:, None] * width
              + np.arange(width)).reshape(-1)
        out = np.bincount(at, g.reshape(-1), minlength=rows * width)
        out = out.astype(g.dtype)
    elif is_torch_namespace(xp):
        out = xp.zeros((rows, width), dtype=g.dtype, device=g.device)
        out = out.index_add_(0, flat, g)
    elif is_jax_namespace(xp):
        out = xp.zeros((rows, width), dtype=g.dtype).at[flat].add(g)
    else:
        table = xp.arange(rows, device=_device_of(g))[None, :]
        step = max(1, 2**22 // rows)
        parts = [slice(i, min(i + step, n)) for i in range(0, n, step)]
        out = sum(xp.matrix_transpose(
            xp.astype(flat[part, None] == table, g.dtype)) @ g[part, :]
            for part in parts)
    return xp.reshape(out, shape)
''',
    # x[key] with a slice of negative step (a key of positive steps is x[key, ...])
    "index": FORWARD_KEY + '''

def _index(xp, x, key):
    """x[key], its slices of negative step (which PyTorch lacks) read as
    flips of slices of positive step."""
    key, flips = _forward(key, x.shape)
    return xp.flip(x[key + (...,)], axis=tuple(flips))
''',
    "unindex": '''
def _unindex(xp, g, shape, key):
    """Zeros of `shape` with g at [key] (the adjoint of x[key]) without item
    assignment: each indexed axis of g spread to its place by a 0/1 matrix
    P[i, j] = 1 where entry j of the slice is entry i of the axis."""
    axis = 0  # the axis of g that the next entry of the key reads
    for k, entry in enumerate(key):
        if entry is None:  # a new axis of size 1
            g = xp.squeeze(g, axis=axis)
            continue
        n = shape[k - sum(e is None for e in key[:k])]
        if entry == slice(None):  # every entry, in place
            axis += 1
            continue
        if isinstance(entry, slice):
            places = list(range(n)[entry])
        else:
            places = [entry % n]
            g = xp.expand_dims(g, axis=axis)
        device = _device_of(g)
        spread = xp.astype(xp.arange(n, device=device)[:, None]
                           == xp.asarray(places, device=device)[None, :], g.dtype)
        g = xp.moveaxis(xp.tensordot(spread, g, axes=([1], [axis])), 0, axis)
        axis += 1
    return g
''',
    "sigmoid": '''
def _sigmoid(xp, x):
    """σ(x) = 1 / (1 + e^-x), the exponent capped at the largest finite
    float's log (never an overflow), one exp pass."""
    cap = 88.0 if x.dtype == xp.float32 else 709.0
    return 1 / (1 + xp.exp(xp.minimum(-x, cap)))
''',
    "silu": '''
def _silu(xp, x):
    """x σ(x) = x / (1 + e^-x), the exponent capped as in σ: never an
    overflow, one exp pass."""
    cap = 88.0 if x.dtype == xp.float32 else 709.0
    return x / (1 + xp.exp(xp.minimum(-x, cap)))
''',
    "gelu": '''
def _gelu(xp, x):
    """The exact GELU x Φ(x) = x (1 + erf(x / √2)) / 2 (PyTorch's default,
    not the tanh approximation)."""
    return x * (1 + _erf(xp, x * 0.7071067811865476)) / 2
''',
    "elu": '''
def _elu(xp, x, alpha):
    """x for x > 0, alpha (e^x - 1) else (expm1 of x ≤ 0 only: no overflow)."""
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0.0)))
''',
    "leaky_relu": '''
def _leaky_relu(xp, x, negative_slope):
    """x for x ≥ 0, negative_slope x else."""
    return xp.where(x >= 0, x, negative_slope * x)
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
    "erf": '''
def _erf(xp, x):
    """erf(x), which the standard lacks, by W. J. Cody's rational
    approximations (Math. Comp. 23, 1969; Netlib's CALERF), to a few units
    in the last place of float64: x P(x²)/Q(x²) for |x| ≤ 0.46875, else
    ±(1 − erfc(|x|)) with erfc(y) = e^(−y²) R(y) for y ≤ 4 and
    e^(−y²) (1/√π − R(1/y²)/y²) / y beyond (each on every entry, then picked)."""
    def horner(coefficients, x):
        out = coefficients[0] * x + coefficients[1]
        for c in coefficients[2:]:
            out = out * x + c
        return out
    y = xp.abs(x)
    z = xp.minimum(y, 0.46875) ** 2
    small = x * horner((1.85777706184603153e-1, 3.16112374387056560e0, 1.13864154151050156e2,
                        3.77485237685302021e2, 3.20937758913846947e3), z) \\
        / horner((1.0, 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
                  2.84423683343917062e3), z)
    t = xp.clip(y, 0.46875, 4.0)
    middle = horner((2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
                     6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
                     1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3), t) \\
        / horner((1.0, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
                  1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
                  3.43936767414372164e3, 1.23033935480374942e3), t)
    u = xp.clip(y, 4.0, 27.0)  # erfc(27) is below the least float
    s = 1 / (u * u)
    tail = (0.5641895835477563 - s * horner(
        (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
         1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4), s)
        / horner((1.0, 2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1,
                  6.05183413124413191e-2, 2.33520497626869185e-3), s)) / u
    r = xp.minimum(y, 27.0)
    near = xp.floor(16 * r) / 16  # e^(−r²) in two factors, so that r² is exact
    erfc = xp.exp(-near * near) * xp.exp((near - r) * (r + near)) \\
        * xp.where(y <= 4.0, middle, tail)
    return xp.where(y <= 0.46875, small, xp.sign(x) * (1 - erfc))
''',
    "triu": '''
def _triu(xp, x, k=0):
    """The entries of x on and above the k-th diagonal (j − i ≥ k), the rest 0
    (of each matrix of a stack: the last two axes)."""
    device = _device_of(x)
    i = xp.arange(x.shape[-2], device=device)[:, None]
    j = xp.arange(x.shape[-1], device=device)[None, :]
    return xp.where(j - i >= k, x, xp.zeros_like(x))
''',
    "tril": '''
def _tril(xp, x, k=0):
    """The entries of x on and below the k-th diagonal (j − i ≤ k), the rest 0
    (of each matrix of a stack: the last two axes)."""
    device = _device_of(x)
    i = xp.arange(x.shape[-2], device=device)[:, None]
    j = xp.arange(x.shape[-1], device=device)[None, :]
    return xp.where(j - i <= k, x, xp.zeros_like(x))
''',
    "revcumsum": '''
def _revcumsum(xp, x, axis=0):
    """The sums from the end along `axis`, y_i = Σ_{j ≥ i} x_j (the adjoint of cumsum)."""
    return xp.flip(xp.cumulative_sum(xp.flip(x, axis=axis), axis=axis), axis=axis)
''',
    "solve": '''
def _solve(xp, a, b):
    """A⁻¹ b, for a matrix or a vector b."""
    if b.ndim == 1:
        return xp.linalg.solve(a, b[:, None])[:, 0]
    return xp.linalg.solve(a, b)
''',
    "inv": '''
def _inv(xp, a):
    """A⁻¹ in A's floating type (Dask's inv of float32 is float64)."""
    inverse = xp.linalg.inv(a)
    return inverse if inverse.dtype == a.dtype else xp.astype(inverse, a.dtype)
''',
    "eye_rect": '''
def _eye_rect(xp, n, m, dtype, device):
    """The n × m matrix δ_ij (Dask's eye(n, m) is wrong where n ≠ m)."""
    i, j = xp.arange(n, device=device), xp.arange(m, device=device)
    return xp.astype(i[:, None] == j[None, :], dtype)
''',
    "det": '''
def _det(xp, a):
    """det(A); where the namespace has no det (Dask), by LU, A = P L U:
    det(P) ∏ diag(U), det(P) = (−1)^(the inversions of P's permutation)."""
    if hasattr(xp.linalg, "det"):
        return xp.linalg.det(a)
    p, _, u = xp.linalg.lu(a)
    rows = xp.arange(a.shape[0], dtype=a.dtype, device=_device_of(a))
    order = rows @ p  # P's row of each column's 1
    pairs = (rows[:, None] < rows[None, :]) & (order[:, None] > order[None, :])
    swaps = xp.sum(xp.astype(pairs, a.dtype))
    return (1 - 2 * (swaps % 2)) * xp.prod(xp.linalg.diagonal(u))
''',
    "logdet": '''
def _logdet(xp, a):
    """log|det A|; Σ log|diag U| of A = P L U where the namespace has no
    slogdet (Dask)."""
    if hasattr(xp.linalg, "slogdet"):
        return xp.linalg.slogdet(a)[1]
    return xp.sum(xp.log(xp.abs(xp.linalg.diagonal(xp.linalg.lu(a)[2]))))
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
    "sum_of_squares": '''
def _sum_of_squares(xp, x):
    """Σ x², one vecdot of x flattened (NumPy's is BLAS ddot)."""
    x = xp.reshape(x, (-1,))
    return xp.vecdot(x, x)
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
                              + dims[i] * dims[k + 1] * dims[j + 1], k)
                             for k in range(i, j))

    def product(i, j):
        if i == j:
            return arrays[i]
        k = cost[i, j][1]
        return product(i, k) @ product(k + 1, j)
    return product(0, n - 1)
''',
    "contract": ARRAY_API_EINSUM,
}
