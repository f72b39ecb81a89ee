"""Random problems on arrays of three and four dimensions, for property tests.

`tensor_problems()` is a Hypothesis strategy of `TensorProblem`s: matcalc text
(declarations and `f = sum(sin(term))`) together with the same function in
jax.numpy (`jax_f(inputs)`), built top-down from the shape each term must
have:

* a variable of that shape (each leaf a fresh input, so operands of lower
  order broadcast against it: `D`, `T x 1`, `1 x T x D`, scalars);
* an elementwise function of a term of that shape (tanh, sin, sigmoid,
  exp(tanh(·)), softplus);
* a binary operation (+, −, *, a / (1 + b²), logaddexp) of a term of that
  shape and one of a shape that broadcasts to it (a suffix, some sizes 1),
  either way round;
* a reduction (mean, sum, max, min, logsumexp, var) with keepdims=True over
  the axes where the shape has size 1 (the operand has sizes there), or
  over any axes of a term x as x − r(x, keepdims=True), or with
  keepdims=False over axes inserted into the shape, written as an integer,
  a negative integer or a tuple;
* softmax or log_softmax over a tuple of the shape's axes.

Values stay moderate by construction (means rather than sums inside, exp
only of tanh), so finite differences are well conditioned; max and min see
independent random entries, which never tie.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

DIMS = ("B", "H", "T", "D")
MAX_NDIM = 4


@dataclass
class TensorProblem:
    """The text of a problem, its function in jax.numpy, and its leaves."""

    text: str
    jax_f: Callable
    leaves: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"TensorProblem({self.text!r})"


@dataclass
class _Term:
    text: str
    jax: Callable          # env -> jax array


class _Builder:
    """Terms built from `draw` choices; `leaves` maps a name to its shape."""

    def __init__(self, draw, st):
        self.draw, self.st = draw, st
        self.leaves: dict[str, tuple] = {}

    def pick(self, items):
        return items[self.draw(self.st.integers(0, len(items) - 1))]

    def leaf(self, shape: tuple) -> _Term:
        name = f"v{len(self.leaves)}"
        self.leaves[name] = shape
        return _Term(name, lambda env: env[name])

    def term(self, shape: tuple, depth: int) -> _Term:
        kinds = ["leaf"] if depth == 0 else ["binary", "drop", "keep", "softmax", "unary",
                                             "binary", "leaf"]
        kind = self.pick(kinds)
        if kind == "leaf":
            return self.leaf(shape)
        if kind == "unary":
            return self.unary(self.term(shape, depth - 1))
        if kind == "binary":
            return self.binary(shape, depth)
        if kind == "softmax" and shape:
            return self.softmax(shape, depth)
        if kind == "keep" and 1 in shape:
            return self.keep(shape, depth)
        if kind == "keep" and shape:
            return self.centred(shape, depth)
        if kind == "drop" and len(shape) < MAX_NDIM:
            return self.drop(shape, depth)
        return self.unary(self.term(shape, depth - 1))

    def unary(self, a: _Term) -> _Term:
        import jax
        import jax.numpy as jnp
        name = self.pick(["tanh", "sin", "sigmoid", "exptanh", "softplus"])
        if name == "exptanh":
            return _Term(f"exp(tanh({a.text}))", lambda e: jnp.exp(jnp.tanh(a.jax(e))))
        fn = {"tanh": jnp.tanh, "sin": jnp.sin, "sigmoid": jax.nn.sigmoid,
              "softplus": jax.nn.softplus}[name]
        return _Term(f"{name}({a.text})", lambda e: fn(a.jax(e)))

    def binary(self, shape: tuple, depth: int) -> _Term:
        import jax.numpy as jnp
        a = self.term(shape, depth - 1)
        b = self.term(self.smaller(shape), depth - 1)
        if self.draw(self.st.booleans()):
            a, b = b, a
        op = self.pick(["+", "-", "*", "/", "logaddexp"])
        if op == "/":
            return _Term(f"({a.text}) / (1 + ({b.text}) ** 2)",
                         lambda e: a.jax(e) / (1 + b.jax(e) ** 2))
        if op == "logaddexp":
            return _Term(f"logaddexp({a.text}, {b.text})",
                         lambda e: jnp.logaddexp(a.jax(e), b.jax(e)))
        fn = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}[op]
        return _Term(f"({a.text}) {op} ({b.text})", lambda e: fn(a.jax(e), b.jax(e)))

    def smaller(self, shape: tuple) -> tuple:
        """A shape that broadcasts to `shape`: a suffix, some sizes made 1."""
        start = self.draw(self.st.integers(0, len(shape)))
        return tuple(1 if self.draw(self.st.booleans()) else d for d in shape[start:])

    def axes_text(self, axes: tuple, ndim: int) -> tuple[str, tuple]:
        """`axes` written as the language takes them (an int, a negative int
        or a tuple) and as jax takes them."""
        if len(axes) == 1 and self.draw(self.st.booleans()):
            a = axes[0] - ndim if self.draw(self.st.booleans()) else axes[0]
            return str(a), (a,)
        written = tuple(a - ndim if self.draw(self.st.booleans()) else a for a in axes)
        return f"({', '.join(map(str, written))}{',' if len(written) == 1 else ''})", written

    def reduction(self, inner: _Term, axes: tuple, ndim: int, keepdims: bool) -> _Term:
        import jax.numpy as jnp
        from jax.scipy.special import logsumexp
        name = self.pick(["mean", "mean", "max", "min", "logsumexp", "var", "sum"])
        axis, jaxes = self.axes_text(axes, ndim)
        keep = ", keepdims=True" if keepdims else ""
        fn = {"mean": jnp.mean, "max": jnp.max, "min": jnp.min, "logsumexp": logsumexp,
              "var": jnp.var, "sum": jnp.sum}[name]
        return _Term(f"{name}({inner.text}, axis={axis}{keep})",
                     lambda e: fn(inner.jax(e), axis=jaxes, keepdims=keepdims))

    def keep(self, shape: tuple, depth: int) -> _Term:
        """A reduction with keepdims=True over (some of) the size-1 axes of `shape`."""
        ones = [k for k, d in enumerate(shape) if d == 1]
        axes = tuple(k for k in ones if self.draw(self.st.booleans())) or (ones[0],)
        wide = tuple(self.pick(DIMS) if k in axes else d for k, d in enumerate(shape))
        return self.reduction(self.term(wide, depth - 1), axes, len(shape), True)

    def centred(self, shape: tuple, depth: int) -> _Term:
        """x − r(x) for a reduction r with keepdims=True over some axes of `shape`."""
        x = self.term(shape, depth - 1)
        axes = tuple(k for k in range(len(shape)) if self.draw(self.st.booleans())) or (0,)
        r = self.reduction(x, axes, len(shape), True)
        return _Term(f"({x.text}) - ({r.text})", lambda e: x.jax(e) - r.jax(e))

    def drop(self, shape: tuple, depth: int) -> _Term:
        """A reduction with keepdims=False over axes inserted into `shape`."""
        wide, axes = list(shape), []
        for _ in range(self.draw(self.st.integers(1, MAX_NDIM - len(shape)))):
            at = self.draw(self.st.integers(0, len(wide)))
            wide.insert(at, self.pick(DIMS))
            axes = [a + 1 if a >= at else a for a in axes] + [at]
        return self.reduction(self.term(tuple(wide), depth - 1), tuple(sorted(axes)),
                              len(wide), False)

    def softmax(self, shape: tuple, depth: int) -> _Term:
        import jax
        inner = self.term(shape, depth - 1)
        axes = tuple(k for k in range(len(shape)) if self.draw(self.st.booleans())) or (0,)
        axis, jaxes = self.axes_text(axes, len(shape))
        name = self.pick(["softmax", "log_softmax"])
        fn = jax.nn.softmax if name == "softmax" else jax.nn.log_softmax
        return _Term(f"{name}({inner.text}, axis={axis})",
                     lambda e: fn(inner.jax(e), axis=jaxes))


def _declaration(name: str, shape: tuple) -> str:
    return f"{name}: " + (" x ".join(map(str, shape)) if shape else "scalar")


def tensor_problems(max_depth: int = 3):
    """A Hypothesis strategy of `TensorProblem`s of order 3 or 4."""
    from hypothesis import strategies as st

    @st.composite
    def build(draw):
        import jax.numpy as jnp
        ndim = draw(st.integers(3, MAX_NDIM))
        shape = DIMS[MAX_NDIM - ndim:]
        builder = _Builder(draw, st)
        term = builder.term(shape, draw(st.integers(2, max_depth)))
        lines = [_declaration(n, s) for n, s in builder.leaves.items()]
        text = "\n".join(lines + [f"f = sum(sin({term.text}))"])
        return TensorProblem(text, lambda env: jnp.sum(jnp.sin(term.jax(env))),
                             dict(builder.leaves))
    return build()
