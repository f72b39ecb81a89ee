"""How the NumPy target writes each operator, and the helper functions the
generated module defines.

`FORMS` lists only the exceptions to the default `np.name(x, key=value)`;
`HELPERS` maps an operator to the source of the function its form calls
(`_sigmoid`), which a module defines when it uses the operator. Constant
arrays take the inputs' floating type `dtype`, so float32 stays float32.
"""

from __future__ import annotations

from . import precedence as P
from .forms import PYTHON_SYNTAX, Form, Forms, call, kwargs, shaped


def default(name: str) -> Form:
    """`np.name(x, key=value)`."""
    return call("np." + name)


def _dims(name: str) -> Form:
    """np.ones((N, D), dtype): in the inputs' precision (float32 stays float32)."""
    return shaped(f"np.{name}", "dtype")


def _along(helper: str) -> Form:
    """`helper(x, axis)`: a helper function reducing along an axis."""
    return Form(lambda a, p: f"{helper}({a[0]}, {p['axis']})")


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
    "softmax": _along("_softmax"),
    "logsumexp": _along("_logsumexp"),
    "diagm": call("np.diag"),
    "unkron_left": call("_unkron_left"),
    "unkron_right": call("_unkron_right"),
})

# The helper functions the forms call, by operator.
HELPERS = {
    "sigmoid": '''
def _sigmoid(x):
    """σ(x) = 1 / (1 + e^-x), the exponent capped where σ falls below the
    smallest normal number (x < -709 in float64, -88 in float32): never an
    overflow, every normal value to full precision, one exp pass."""
    x = np.asarray(x)
    cap = {np.float32: 88.0, np.float16: 11.0}.get(x.dtype.type, 709.0)
    return 1 / (1 + np.exp(np.minimum(-x, cap)))
''',
    "softmax": '''
def _softmax(x, axis):
    """exp(x) / sum(exp(x), axis), shifted by the max for stability."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
''',
    "logsumexp": '''
def _logsumexp(x, axis):
    """log(sum(exp(x), axis)), shifted by the max for stability."""
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))
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
