"""The PyTorch target (`--target torch`): the NumPy module read in `torch`,
plus `Function`, a `torch.autograd.Function` whose `forward` computes the
function (saving what backward needs on its ctx) and whose `backward` is
matcalc's closed form, and `f(*inputs) = Function.apply(*inputs)`, so
`loss.backward()`, `torch.autograd.grad` and `torch.compile` run it.

Only torch functions, no NumPy call, no `out=`, no item assignment; arrays
and constants are made on the inputs' device in their floating type
(`dtype` holds both, as keywords: `torch.eye(N, **dtype)`).
"""

from __future__ import annotations

from . import bounds, module
from . import precedence as P
from ..ad.gradient import Gradient
from .einsum_forms import axes_call, einsum_call, tensordot_call
from ..ir.expr import is_op, postorder
from ..ops.indexing import key_code, key_text, negative_step
from .forms import FORWARD_KEY, Form, axis_text, call, joined, numbered, shaped, sizes
from .frameworks import FrameworkPrinter, FrameworkTarget, Guards, RenamedForms
from .naming import DTYPE_CODE
from ..passes.lowering import Capabilities
from .numpy import load  # noqa: F401  (a generated module loads as NumPy's does)


def _made(name: str) -> Form:
    """`torch.zeros((N, D), **dtype)`: of the inputs' type, on their device."""
    return shaped(f"torch.{name}", f"**{DTYPE_CODE}")


def _both_tensors(name: str) -> Form:
    """`torch.maximum(a, b)`, which takes tensors only (a may be a number)."""
    return Form(f"torch.{name}(torch.as_tensor({{0}}), torch.as_tensor({{1}}))")


def _dim(params: dict) -> str:
    """`, dim=axes` for a reduction over some axes (amax, amin), else nothing."""
    return "" if params["axis"] is None else f", dim={axis_text(params['axis'])}"


# PyTorch's exceptions to NumPy's forms read as `torch.`.
FORMS = RenamedForms("torch", {
    "zeros": _made("zeros"),
    "ones": _made("ones"),
    "eye": Form(lambda a, p: f"torch.eye({p['shape'][0]}, **{DTYPE_CODE})"),
    "sigmoid": Form("torch.sigmoid({0})"),
    "relu": Form("torch.relu({0})"),
    "step": Form("torch.sign(torch.relu({0}))"),
    "softplus": Form("_softplus({0})"),
    "silu": call("torch.nn.functional.silu"),
    "gelu": call("torch.nn.functional.gelu"),
    "elu": numbered("torch.nn.functional.elu", "elu", "alpha"),
    "leaky_relu": numbered("torch.nn.functional.leaky_relu", "leaky_relu", "negative_slope"),
    "maximum": _both_tensors("maximum"),
    "minimum": _both_tensors("minimum"),
    "logaddexp": _both_tensors("logaddexp"),
    "clip": Form("torch.clamp({0}, torch.as_tensor({1}), torch.as_tensor({2}))"),
    "where": Form("torch.where({0}, torch.as_tensor({1}), torch.as_tensor({2}))"),
    "erf": call("torch.erf"),
    "eye_rect": Form(lambda a, p: f"torch.eye({p['shape'][0]}, {p['shape'][1]}, **{DTYPE_CODE})"),
    "cumsum": Form("torch.cumsum({0}, {axis})"),
    "max": Form(lambda a, p: f"torch.amax({a[0]}{_dim(p)})"),
    "min": Form(lambda a, p: f"torch.amin({a[0]}{_dim(p)})"),
    "revcumsum": Form("torch.flip(torch.cumsum(torch.flip({0}, ({axis},)), {axis}), ({axis},))"),
    "contract": einsum_call("torch.einsum"),
    "tensordot": tensordot_call("torch", "dims", "permute"),
    "permute": axes_call("torch.permute"),
    # PyTorch's slices step forwards only: x[::-1] goes through _index
    "index": Form(lambda a, p: f"_index({a[0]}, {key_code(p['key'])})"
                  if negative_step(p["key"]) else f"{a[0]}[{key_text(p['key'])}]",
                  P.POSTFIX, P.POSTFIX),
    "unindex": Form(lambda a, p: f"_unindex({a[0]}, {sizes(p['shape'])}, {key_code(p['key'])})"),
    "concatenate": joined("torch.cat", "dim"),
    "scatter_add": Form(lambda a, p: f"_scatter_add({a[0]}, {a[1]}, {sizes(p['shape'])})"),
    "broadcast_copy": Form(lambda a, p: f"torch.broadcast_to({a[0]}, "
                           f"{sizes(p['shape'])}).clone()"),
    "full": Form(lambda a, p: f"torch.full({sizes(p['shape'])}, {a[0]}, **{DTYPE_CODE})"),
    "indicator": Form(f"{{0}}.to(**{DTYPE_CODE})", P.POSTFIX, P.POSTFIX),
    "copy": Form("{0}.clone()", P.POSTFIX, P.POSTFIX),
    # torch.kron raises on a non-contiguous factor (A.T): "view size is not compatible"
    "kron": Form("torch.kron({0}.contiguous(), {1}.contiguous())", P.ATOM, P.POSTFIX),
})

# PyTorch's own helpers (None: torch has the function itself).
HELPERS = {
    "index": '''
def _index(x, key):
    """x[key], its slices of negative step (which PyTorch lacks) read as
    flips of slices of positive step."""
    key, flips = _forward(key, x.shape)
    return torch.flip(x[key], flips)
''',
    "unindex": '''
def _unindex(g, shape, key):
    """Zeros of `shape` with g at [key]: the adjoint of x[key]."""
    key, flips = _forward(key, shape)
    out = torch.zeros(shape, dtype=g.dtype, device=g.device)
    out[key] = torch.flip(g, flips) if flips else g
    return out
''',
    "scatter_add": '''
def _scatter_add(g, idx, shape):
    """Zeros of `shape` with each g[i] (broadcast to the rows idx names)
    added at the row idx[i], repeated rows adding up: the adjoint of
    table[idx]."""
    out = torch.zeros(shape, dtype=g.dtype, device=g.device)
    g = g.expand(*idx.shape, *shape[1:])
    return out.index_put_((idx,), g, accumulate=True)
''',
    "sigmoid": None,
    "erf": None,
    **dict.fromkeys(("silu", "gelu", "elu", "leaky_relu")),
    "revcumsum": None,
    "softplus": '''
def _softplus(x):
    """log(1 + e^x), as logaddexp(x, 0): never an overflow."""
    return torch.logaddexp(x, torch.zeros_like(x))
''',
    "softmax": '''
def _softmax(x, axis):
    """exp(x) / sum(exp(x), axis), shifted by the max for stability: one
    torch.softmax kernel along one axis (torch's exp alone is slower)."""
    if isinstance(axis, int):
        return torch.softmax(x, axis)
    dims = tuple(range(x.ndim)) if axis is None else axis
    e = torch.exp(x - torch.amax(x, dim=dims, keepdim=True))
    return e / torch.sum(e, dim=dims, keepdim=True)
''',
    "logsumexp": '''
def _logsumexp(x, axis):
    """log(sum(exp(x), axis)), shifted by the max for stability."""
    dims = tuple(range(x.ndim)) if axis is None else axis
    return torch.logsumexp(x, dim=dims)
''',
}

_INDICES = '''
def _indices(name, x):
    """An integer input: an integer tensor (indices), as int64 where PyTorch
    indexes by no other (int8, int16; uint8, which it reads as a mask)."""
    x = torch.as_tensor(x)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name}: expected an integer array (indices), "
                        f"got {x.dtype}")
    return x if x.dtype in (torch.int64, torch.int32) else x.to(torch.int64)
'''

_ARRAY = '''
def _array(name, x):
    """x as a floating tensor: a tensor as given (integers and booleans
    become the default floating type); a Python number a float64 scalar
    (which _checked gives the other inputs' type); anything else (None,
    text, complex numbers) a TypeError naming the input."""
    if type(x) in (float, int):
        return torch.tensor(float(x), dtype=torch.float64)
    try:
        t = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError):
        t = None
    if t is None or t.is_complex():
        what = f"{x!r:.40}" if t is None else t.dtype
        raise TypeError(f"{name}: expected an array of real numbers, "
                        f"got {what}")
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())
'''

# `_checked`'s lines giving the floating inputs one type, the promotion of
# the tensors' types (float32 beside float64: float64), and the inputs given
# as Python numbers that type (a float64 scalar times a float32 tensor would
# be float64). torch.promote_types only where the types differ: it returns
# no tensor, which torch.compile(fullgraph=True) cannot trace.
_PROMOTE = '''
    given = [x for x, a in zip(out, arrays)
             if x.is_floating_point() and type(a) not in (float, int)]
    kind = given[0].dtype if given else torch.float64
    for x in given[1:]:
        if x.dtype != kind:
            kind = torch.promote_types(kind, x.dtype)
    out = [x.to(kind) if x.is_floating_point() and x.dtype != kind else x
           for x in out]
'''

_LIKE = '''
def _like(*tensors):
    """The floating type (float32 stays float32) and device of the
    inputs' results, as keywords of torch.zeros, torch.eye, torch.tensor:
    a scalar's type counts only where no input has axes."""
    shaped = [x for x in tensors if x.ndim] or tensors
    kind = torch.result_type(shaped[0], 1.0)
    for x in shaped[1:]:
        kind = torch.promote_types(kind, torch.result_type(x, 1.0))
    return {"dtype": kind, "device": shaped[0].device}
'''

_WRAPPER = '''
def _save(ctx, cache):
    """Keep forward's cache for backward: its tensors by save_for_backward,
    the rest (sizes, dtype) on ctx."""
    ctx.tensor = tuple(isinstance(c, torch.Tensor) for c in cache)
    ctx.others = [c for c in cache if not isinstance(c, torch.Tensor)]
    ctx.save_for_backward(*(c for c in cache if isinstance(c, torch.Tensor)))


def _saved(ctx):
    """The cache _save kept."""
    tensors, others = iter(ctx.saved_tensors), iter(ctx.others)
    return tuple(next(tensors) if t else next(others) for t in ctx.tensor)


class Function(torch.autograd.Function):
    """{value} as a torch.autograd.Function: forward computes it and saves
    what backward needs; backward is matcalc's closed form."""

    @staticmethod
    def forward(ctx, *inputs):
        value, cache = forward(*inputs)
        _save(ctx, cache)
        return value

    @staticmethod
    def backward(ctx, dout):
        for name, needed in zip(INPUTS, ctx.needs_input_grad):
            if needed and name not in WRT:  # its gradient is None
                warnings.warn(
                    f"{{name}} requires grad, but matcalc derived the "
                    f"gradients by {{', '.join(WRT)}} only: it gets none; "
                    f"generate the module with {{name}} in wrt to train it",
                    stacklevel=2)
        grads = dict(zip(WRT, backward(_saved(ctx), dout)))
        return tuple(grads.get(name) for name in INPUTS)


def f(*inputs):
    """{value} of the inputs, in INPUTS order; its backward (loss.backward(),
    torch.autograd.grad) is matcalc's."""
    return Function.apply(*inputs)
'''


class TorchPrinter(FrameworkPrinter):
    """NumPy's printer, in `torch`."""

    language = "torch"
    module = "torch"
    forms = FORMS

    def typed(self, value: str) -> str:
        return f"torch.tensor({value}, **{DTYPE_CODE})"


class TorchTarget(FrameworkTarget):
    """PyTorch's part of a generated module (see `module.Target`).

    Made for torch.compile as much as for eager mode: step(x) is the float
    `torch.sign(torch.relu(x))`, never the boolean mask `(x > 0)` (a mask
    the compiled forward hands its backward is a bool tensor, which
    inductor's CPU kernels store 15x slower than a float one; in eager mode
    a float times a bool is the slower product too); and dout multiplies
    the first adjoints (`early_dout`), so no gradient made by a matrix
    product takes one more pass for it."""

    capabilities = Capabilities(einsum=True, multi_dot=True, tensordot=True, batched_matmul=True,
                                broadcasts=True, casts=True)
    early_dout = True
    permute_function = "permute"
    imports = ("import math", "import warnings", "", "import torch")
    names = frozenset({"math", "warnings", "torch", "f", "Function", "_forward", "_save", "_saved",
                       "_like"})
    module = "torch"
    helper_exceptions = HELPERS
    guards = Guards(_ARRAY + "\n" + _LIKE, _PROMOTE, _INDICES, in_range=bounds.TORCH)

    def helpers(self, exprs) -> list[str]:
        """The helpers the expressions call; `_forward` where `_index` or
        `_unindex` is, `_index` only for a slice of negative step."""
        indexed = [n for n in postorder(exprs) if is_op(n, "index", "unindex")]
        backwards = any(negative_step(n.param("key")) for n in indexed if n.op == "index")
        out = [h for h in super().helpers(exprs)
               if backwards or h != self.helper_sources["index"]]
        return out + ([FORWARD_KEY] if backwards or any(n.op == "unindex" for n in indexed)
                      else [])
    printer = TorchPrinter

    @staticmethod
    def result_type(args: str) -> str:
        """`dtype = _like(X, y)`: the inputs' floating type and device."""
        return f"{DTYPE_CODE} = _like({args})"

    @staticmethod
    def zeros(shape: str) -> str:
        return f"torch.zeros({shape}, **{DTYPE_CODE})"

    @staticmethod
    def eye(size: str) -> str:
        return f"torch.eye({size}, **{DTYPE_CODE})"


TARGET = TorchTarget()


def generate(gradient: Gradient, extras=()) -> str:
    """The source of the PyTorch module for `gradient` (and an `hvp`), with
    `Function` and `f`, deterministic."""
    source = module.generate(gradient, TARGET, extras)
    return source + "\n" + _WRAPPER.format(value=gradient.problem.output_name)
