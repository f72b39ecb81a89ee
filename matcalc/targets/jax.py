"""The JAX target (`--target jax`): the NumPy module read in `jax.numpy`,
plus `f(*inputs)`, a `jax.custom_vjp` function whose backward rule is
matcalc's closed-form `backward` (no JAX autodiff), so `jax.grad`,
`jax.value_and_grad` and `jax.vjp` of `f` run it, under `jax.jit` too.

Only `jnp` functions, no `out=`, no item assignment (JAX arrays are
immutable); constants take the inputs' floating type, so float32 stays
float32. Sizes and the floating type, which `backward` may need, travel
from the forward rule as static pytree data, never as arrays.
"""

from __future__ import annotations

from . import bounds, module
from . import precedence as P
from ..ad.gradient import Gradient
from .einsum_forms import einsum_call
from ..ops.indexing import key_code
from .forms import Form, call, numbered, sizes
from .frameworks import FrameworkPrinter, FrameworkTarget, Guards, RenamedForms
from .naming import DTYPE_CODE
from .numpy import load  # noqa: F401  (a generated module loads as NumPy's does)

# JAX's exceptions to NumPy's forms read as `jnp.`.
FORMS = RenamedForms("jnp", {
    "sigmoid": call("jax.nn.sigmoid"),
    "erf": call("jax.scipy.special.erf"),
    "silu": call("jax.nn.silu"),
    "gelu": Form("jax.nn.gelu({0}, approximate=False)"),
    "elu": numbered("jax.nn.elu", "elu", "alpha"),
    "leaky_relu": numbered("jax.nn.leaky_relu", "leaky_relu", "negative_slope"),
    "zeros": Form(lambda a, p: f"jnp.zeros({_shape(p['shape'])}, {DTYPE_CODE})"),
    "ones": Form(lambda a, p: f"jnp.ones({_shape(p['shape'])}, {DTYPE_CODE})"),
    "contract": einsum_call("jnp.einsum"),
    "unindex": Form(lambda a, p: f"_unindex({a[0]}, {sizes(p['shape'])}, {key_code(p['key'])})"),
    "scatter_add": Form(lambda a, p: f"_scatter_add({a[0]}, {a[1]}, {sizes(p['shape'])})"),
    # JAX arrays are never written into: a broadcast result needs no copy
    "broadcast_copy": Form(lambda a, p: f"jnp.broadcast_to({a[0]}, {sizes(p['shape'])})"),
    "copy": Form("{0}", P.LOWEST),  # JAX arrays are never written into: no copy
})

# JAX's own helpers: sigmoid is jax.nn.sigmoid, erf jax.scipy.special.erf and
# silu, gelu, elu and leaky_relu jax.nn's, no helper; softmax without NumPy's update in place (JAX arrays are immutable).
HELPERS = {"sigmoid": None, "erf": None,
           **dict.fromkeys(("silu", "gelu", "elu", "leaky_relu")),
           "softmax": '''
def _softmax(x, axis):
    """exp(x) / sum(exp(x), axis), shifted by the max for stability."""
    e = jnp.exp(x - jnp.max(x, axis=axis, keepdims=True))
    return e / jnp.sum(e, axis=axis, keepdims=True)
''',
           "unindex": '''
def _unindex(g, shape, key):
    """Zeros of `shape` with g at [key]: the adjoint of x[key]."""
    return jnp.zeros(shape, g.dtype).at[key].set(g)
''',
           "scatter_add": '''
def _scatter_add(g, idx, shape):
    """Zeros of `shape` with each g[i] (broadcast to the rows idx names)
    added at the row idx[i], repeated rows adding up: the adjoint of
    table[idx]."""
    return jnp.zeros(shape, g.dtype).at[idx].add(g)
'''}

_INDICES = '''
def _indices(name, x):
    """An integer input: an integer array (indices), never converted."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{name}: expected an integer array (indices), "
                        f"got {x.dtype}")
    return x
'''

_ARRAY = '''
def _array(name, x):
    """x as a JAX floating array (a tracer as it is; integers and booleans
    become the default floating type); anything else (None, text, complex
    numbers) a TypeError naming the input."""
    try:
        a = jnp.asarray(x)
    except (TypeError, ValueError):
        a = None
    if a is None or jnp.issubdtype(a.dtype, jnp.complexfloating):
        what = f"{x!r:.40}" if a is None else a.dtype
        raise TypeError(f"{name}: expected an array of real numbers, "
                        f"got {what}")
    return a if jnp.issubdtype(a.dtype, jnp.floating) else a.astype(float)
'''

# `_checked`'s lines giving the floating inputs one type, the promotion of
# their types (float32 beside float64: float64; a Python number, weakly
# typed, takes the arrays' type; indices stay integers).
_PROMOTE = '''
    floating = [jnp.issubdtype(x.dtype, jnp.floating) for x in out]
    kind = jnp.result_type(*(x for x, f in zip(out, floating) if f), 0.0)
    out = [x.astype(kind) if f and x.dtype != kind else x
           for x, f in zip(out, floating)]
'''

_WRAPPER = '''
class _Static:
    """A value backward needs that is no array (a size, the floating
    type): JAX carries it as static pytree data."""

    def __init__(self, value):
        self.value = value


jax.tree_util.register_pytree_node(
    _Static, lambda s: ((), s.value), lambda value, _: _Static(value))


def f(*inputs):
    """{value} of the inputs, in INPUTS order; jax.grad and jax.vjp of it
    by the inputs in WRT run backward, under jax.jit too. Differentiated by
    another input it raises TypeError: matcalc derived no gradient by it,
    and a zero would be silently wrong (inside jax.jit, where the inputs
    are traced alike, that input's cotangent is 0: differentiate f itself,
    or generate the module with that input in wrt)."""
    for name, x in zip(INPUTS, inputs):
        if name not in WRT and hasattr(x, "primal"):  # differentiated by
            raise TypeError(
                f"{{name}}: matcalc derived the gradients by "
                f"{{', '.join(WRT)}} only; generate the module with "
                f"{{name}} in wrt to differentiate by it")
    return _f(*inputs)


@jax.custom_vjp
def _f(*inputs):
    return forward(*inputs)[0]


def _f_forward(*inputs):
    value, cache = forward(*inputs)
    return value, tuple(c if isinstance(c, jax.Array) else _Static(c)
                        for c in cache)


def _f_backward(cache, dout):
    cache = tuple(c.value if isinstance(c, _Static) else c for c in cache)
    grads = dict(zip(WRT, backward(cache, dout)))
    return tuple(grads.get(name) for name in INPUTS)


_f.defvjp(_f_forward, _f_backward)
'''


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


class JaxPrinter(FrameworkPrinter):
    """NumPy's printer, in `jax.numpy`."""

    language = "jax"
    module = "jnp"
    forms = FORMS

    def typed(self, value: str) -> str:
        return f"jnp.asarray({value}, {DTYPE_CODE})"


class JaxTarget(FrameworkTarget):
    """JAX's part of a generated module (see `module.Target`): dout
    multiplies the first adjoints (`early_dout`), so no gradient made by a
    matrix product takes one more pass for it in the custom_vjp rule."""

    early_dout = True
    imports = ("import math", "", "import jax", "import jax.numpy as jnp")
    names = frozenset({"math", "jax", "jnp", "f", "_f", "_f_forward", "_f_backward", "_Static"})
    module = "jnp"
    helper_exceptions = HELPERS
    guards = Guards(_ARRAY, _PROMOTE, indices=_INDICES, in_range=bounds.JAX)
    printer = JaxPrinter

    @staticmethod
    def result_type(args: str) -> str:
        """`dtype = jnp.result_type(X, y, 1.0)`: float32 stays float32."""
        return f"{DTYPE_CODE} = jnp.result_type({', '.join(a for a in (args, '1.0') if a)})"

    @staticmethod
    def zeros(shape: str) -> str:
        return f"jnp.zeros({shape}, {DTYPE_CODE})"

    @staticmethod
    def eye(size: str) -> str:
        return f"jnp.eye({size}, dtype={DTYPE_CODE})"


TARGET = JaxTarget()


def generate(gradient: Gradient, extras=()) -> str:
    """The source of the JAX module for `gradient` (and an `hvp`), with
    `f`, the function as a `jax.custom_vjp`, deterministic."""
    source = module.generate(gradient, TARGET, extras)
    return source + "\n" + _WRAPPER.format(value=gradient.problem.output_name)
