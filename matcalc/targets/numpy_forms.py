"""How the NumPy target writes each operator, and the helper functions the
generated module defines.

`FORMS` lists only the exceptions to the default `np.name(x, key=value)`;
`HELPERS` maps an operator to the source of the function its form calls
(`_sigmoid`), which a module defines when it uses the operator. Constant
arrays take the inputs' floating type `dtype`, so float32 stays float32.
"""

from __future__ import annotations

from . import precedence as P
from .einsum_forms import axes_call, einsum_call, tensordot_call
from ..ops.indexing import key_text
from .forms import (PYTHON_SYNTAX, Form, Forms, axis_text, call, joined, kwargs, numbered, reshaped,
                    shaped, sizes, triangle)


def default(name: str) -> Form:
    """`np.name(x, key=value)`."""
    return call("np." + name)


def _dims(name: str) -> Form:
    """np.ones((N, D), dtype): in the inputs' precision (float32 stays float32)."""
    return shaped(f"np.{name}", "dtype")


def _along(helper: str) -> Form:
    """`helper(x, axis)`: a helper function reducing along an axis."""
    return Form(lambda a, p: f"{helper}({a[0]}, {axis_text(p['axis'])})")


# The NumPy forms: `default(name)` unless listed here.
FORMS = Forms(default, {
    **PYTHON_SYNTAX,
    # The array method: `x.sum(axis=0)` costs a microsecond less than np.sum.
    "sum": Form(lambda a, p: f"{a[0]}.sum({kwargs(p)[2:]})", P.POSTFIX, P.POSTFIX),
    "zeros": _dims("zeros"),
    "ones": _dims("ones"),
    "eye": Form(lambda a, p: f"np.eye({p['shape'][0]}, dtype=dtype)"),
    "det": call("np.linalg.det"),
    "logdet": Form("np.linalg.slogdet({0})[1]"),
    "inv": call("np.linalg.inv"),
    "solve": call("np.linalg.solve"),
    "norm": call("np.linalg.norm"),
    "norm1": Form("np.abs({0}).sum()"),
    "sigmoid": call("_sigmoid"),
    "relu": Form("np.maximum({0}, 0)"),
    "step": Form("np.sign(np.maximum({0}, 0))"),
    "softplus": Form("np.logaddexp(0, {0})"),
    "silu": call("_silu"),
    "gelu": call("_gelu"),
    "elu": numbered("_elu", "elu", "alpha"),
    "leaky_relu": numbered("_leaky_relu", "leaky_relu", "negative_slope"),
    "softmax": _along("_softmax"),
    "logsumexp": _along("_logsumexp"),
    "diagm": call("np.diag"),
    "unkron_left": call("_unkron_left"),
    "unkron_right": call("_unkron_right"),
    "eye_rect": Form(lambda a, p: f"np.eye({p['shape'][0]}, {p['shape'][1]}, dtype=dtype)"),
    "triu": triangle("np.triu"),
    "tril": triangle("np.tril"),
    "erf": call("_erf"),
    "revcumsum": _along("_revcumsum"),
    "contract": einsum_call("np.einsum"),
    "ordered_contract": einsum_call("np.einsum"),  # optimize= the order lowering chose
    "tensordot": tensordot_call("np", "axes", "transpose"),
    "permute": axes_call("np.transpose"),
    "matrix_transpose": Form("np.swapaxes({0}, -1, -2)"),
    "reshape": reshaped("np.reshape"),
    "concatenate": joined("np.concatenate"),
    "unindex": Form(lambda a, p: f"_unindex({a[0]}, {sizes(p['shape'])}, "
                    f"np.s_[{key_text(p['key'])}])"),
    "scatter_add": Form(lambda a, p: f"_scatter_add({a[0]}, {a[1]}, {sizes(p['shape'])})"),
    # x broadcast to a shape: a view where it is read, a new array where it is a result
    "broadcast": Form(lambda a, p: f"np.broadcast_to({a[0]}, {sizes(p['shape'])})"),
    "broadcast_copy": Form(lambda a, p: f"np.broadcast_to({a[0]}, {sizes(p['shape'])}).copy()"),
    "copy": Form("{0}.copy()", P.POSTFIX, P.POSTFIX),  # a result that is an array held elsewhere
    "full": Form(lambda a, p: f"np.full({sizes(p['shape'])}, {a[0]}, dtype)"),
    # zeros with a constant at [key]: the constant of the floating type, which
    # _unindex's assignment broadcasts (no array of ones)
    "fill": Form(lambda a, p: f"_unindex(dtype.type({a[0]}), {sizes(p['shape'])}, "
                 f"np.s_[{key_text(p['key'])}])"),
    "indicator": Form("{0}.astype(dtype)", P.POSTFIX, P.POSTFIX),  # 1.0 where k holds
})

# The helper functions the forms call, by operator.
HELPERS = {
    "unindex": '''
def _unindex(g, shape, key):
    """Zeros of `shape` with g at [key]: the adjoint of x[key]."""
    out = np.zeros(shape, dtype=np.result_type(g))
    out[key] = g
    return out
''',
    "scatter_add": '''
def _scatter_add(g, idx, shape):
    """Zeros of `shape` with each g[i] (broadcast to the rows idx names)
    added at the row idx[i], repeated rows adding up: the adjoint of
    table[idx]. Where g repeats along index axes (a mean-pool's gradient)
    and the table is small enough, the times each row is named (bincount)
    times g's distinct rows, one matmul; else one bincount of g's entries
    at their places row * width + column, summed in float64 (faster than
    np.add.at's unbuffered loop)."""
    g = np.asarray(g)
    g = g.reshape((1,) * (idx.ndim + len(shape) - 1 - g.ndim) + g.shape)
    g = np.broadcast_to(g, g.shape[:idx.ndim] + tuple(shape[1:]))
    idx = idx.astype(np.intp, copy=False) % shape[0]  # negatives from the end
    kept = [a for a in range(idx.ndim) if g.shape[a] != 1 or idx.shape[a] == 1]
    m = int(np.prod([idx.shape[a] for a in kept]))
    if len(kept) == idx.ndim or m * shape[0] > 64 * idx.size:
        width = int(np.prod(shape[1:]))
        at = (idx.reshape(-1, 1) * width + np.arange(width)).reshape(-1)
        g = np.broadcast_to(g, idx.shape + tuple(shape[1:])).reshape(-1)
        out = np.bincount(at, g, minlength=shape[0] * width)
        return out.reshape(shape).astype(g.dtype, copy=False)
    flat = np.moveaxis(idx, kept, range(len(kept)))
    at = np.arange(m)[:, None] * shape[0] + flat.reshape(m, -1)
    counts = np.bincount(at.ravel(), minlength=m * shape[0])
    counts = counts.reshape(m, shape[0])
    return (counts.T.astype(g.dtype) @ g.reshape(m, -1)).reshape(shape)
''',
    "sigmoid": '''
def _sigmoid(x):
    """σ(x) = 1 / (1 + e^-x), the exponent capped where σ falls below the
    smallest normal number (x < -709 in float64, -88 in float32): never an
    overflow, every normal value to full precision, one exp pass."""
    x = np.asarray(x)
    cap = {np.float32: 88.0, np.float16: 11.0}.get(x.dtype.type, 709.0)
    return 1 / (1 + np.exp(np.minimum(-x, cap)))
''',
    "silu": '''
def _silu(x):
    """x σ(x) = x / (1 + e^-x), the exponent capped as in σ: never an
    overflow, one exp pass."""
    x = np.asarray(x)
    cap = {np.float32: 88.0, np.float16: 11.0}.get(x.dtype.type, 709.0)
    return x / (1 + np.exp(np.minimum(-x, cap)))
''',
    "gelu": '''
def _gelu(x):
    """The exact GELU x Φ(x) = x (1 + erf(x / √2)) / 2 (PyTorch's default,
    not the tanh approximation)."""
    return x * (1 + _erf(x * 0.7071067811865476)) / 2
''',
    "elu": '''
def _elu(x, alpha):
    """x for x > 0, alpha (e^x - 1) else (expm1 of x ≤ 0 only: no overflow)."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
''',
    "leaky_relu": '''
def _leaky_relu(x, negative_slope):
    """x for x ≥ 0, negative_slope x else."""
    return np.where(x >= 0, x, negative_slope * x)
''',
    "softmax": '''
def _softmax(x, axis):
    """exp(x) / sum(exp(x), axis), shifted by the max for stability (one
    array, updated in place)."""
    e = x - np.max(x, axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= np.sum(e, axis=axis, keepdims=True)
    return e
''',
    "logsumexp": '''
def _logsumexp(x, axis):
    """log(sum(exp(x), axis)), shifted by the max for stability."""
    m = np.max(x, axis=axis, keepdims=True)
    total = np.sum(np.exp(x - m), axis=axis)
    return np.squeeze(m, axis=axis) + np.log(total)
''',
    "erf": '''
def _erf(x):
    """erf(x) by W. J. Cody's rational approximations (Math. Comp. 23, 1969;
    Netlib's CALERF), to a few units in the last place of float64: x P(x²)/Q(x²)
    for |x| ≤ 0.46875, else ±(1 − erfc(|x|)) with erfc(y) = e^(−y²) R(y) for
    y ≤ 4 and e^(−y²) (1/√π − R(1/y²)/y²) / y beyond; each entry computed
    by its own interval's formula only."""
    def horner(coefficients, x):
        out = coefficients[0] * x + coefficients[1]
        for c in coefficients[2:]:
            out *= x
            out += c
        return out
    x = np.asarray(x)
    y = np.abs(x)
    out = np.empty_like(y)
    low = y <= 0.46875
    z = y[low] ** 2
    out[low] = x[low] * horner((1.85777706184603153e-1, 3.16112374387056560e0,
                                1.13864154151050156e2, 3.77485237685302021e2,
                                3.20937758913846947e3), z) \\
        / horner((1.0, 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
                  2.84423683343917062e3), z)
    high = ~low
    r = y[high]
    erfc = np.empty_like(r)
    middle = r <= 4.0
    t = r[middle]
    erfc[middle] = horner((2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
                           6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
                           1.71204761263407058e3, 2.05107837782607147e3,
                           1.23033935479799725e3), t) \\
        / horner((1.0, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
                  1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
                  3.43936767414372164e3, 1.23033935480374942e3), t)
    u = r[~middle]
    s = 1 / (u * u)
    erfc[~middle] = (0.5641895835477563 - s * horner(
        (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
         1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4), s)
        / horner((1.0, 2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1,
                  6.05183413124413191e-2, 2.33520497626869185e-3), s)) / u
    r = np.minimum(r, 27.0)  # erfc(27) is below the least float
    near = np.floor(16 * r) / 16  # e^(−r²) in two factors, so that r² is exact
    erfc *= np.exp(-near * near) * np.exp(-(r - near) * (r + near))
    out[high] = np.sign(x[high]) * (1 - erfc)
    return out[()]
''',
    "revcumsum": '''
def _revcumsum(x, axis):
    """The sums from the end along `axis`, y_i = Σ_{j ≥ i} x_j (the adjoint of cumsum)."""
    return np.flip(np.cumsum(np.flip(x, axis), axis), axis)
''',
    "unkron_left": '''
def _unkron_left(g, b):
    """The adjoint of kron(a, b) for a: each block of g against b."""
    p, q = b.shape
    return np.einsum("ikjl,kl->ij", g.reshape(g.shape[0] // p, p, g.shape[1] // q, q), b)
''',
    "unkron_right": '''
def _unkron_right(g, a):
    """The adjoint of kron(a, b) for b: the blocks of g weighted by a."""
    m, n = a.shape
    return np.einsum("ikjl,ij->kl", g.reshape(m, g.shape[0] // m, n, g.shape[1] // n), a)
''',
}
