"""Long inputs cost work linear in their length: structural checks, no timing.

A gradient through k nested functions is a product of k factors; built by
flattening each partial product into the next, the builders would write
O(k²) argument slots (minutes at the parser's nesting limit). Counted over
every node the builders make while deriving, the work must grow linearly:
doubling k at most a little more than doubles it.
"""

from __future__ import annotations

import importlib
import pkgutil

import matcalc
import matcalc.ops


def _slots(text: str, monkeypatch) -> int:
    """Argument slots of every node the builders make while deriving."""
    p = matcalc.parse(text)
    count = [0]
    build = matcalc.ops.builders.apply

    def counted(op, args, params=()):
        count[0] += len(args) + 1
        return build(op, args, params)
    with monkeypatch.context() as m:
        m.setattr(matcalc.ops.builders, "apply", counted)
        matcalc.grad(p)
    return count[0]


def _nested_sin(k: int) -> str:
    return "x: N\nf = sum(" + "sin(" * k + "x" + ")" * k + ")\n"


def _matrix_chain(k: int) -> str:
    return "A: N x N\nf = trace(" + " @ ".join(["A"] * k) + ")\n"


def test_nested_functions_grow_linearly(monkeypatch):
    small, large = _slots(_nested_sin(400), monkeypatch), _slots(_nested_sin(800), monkeypatch)
    assert large < 2.2 * small, (small, large)


def _ops_modules() -> list:
    """The modules of the `matcalc.ops` package."""
    return [importlib.import_module(f"matcalc.ops.{m.name}")
            for m in pkgutil.iter_modules(matcalc.ops.__path__)]


def _reads(text: str, monkeypatch) -> int:
    """How often the builders look at a node's operator while deriving."""
    p = matcalc.parse(text)
    count = [0]
    look = matcalc.ir.expr.is_op

    def counted(node, *names):
        count[0] += 1
        return look(node, *names)
    with monkeypatch.context() as m:
        for module in _ops_modules():
            if hasattr(module, "is_op"):
                m.setattr(module, "is_op", counted)
        matcalc.grad(p)
    return count[0]


def test_matrix_chains_grow_linearly(monkeypatch):
    """Like terms and symmetry read a chain of k products factor by factor:
    at every node of the chain that is O(k²), unless long chains are taken
    whole."""
    small, large = (_reads(_matrix_chain(300), monkeypatch),
                    _reads(_matrix_chain(600), monkeypatch))
    assert large < 2.2 * small, (small, large)


def test_a_long_product_is_still_right():
    """A product nested past the flattening length keeps its value."""
    import numpy as np
    p = matcalc.parse(_nested_sin(100))
    x = np.linspace(-1, 1, 5)
    value, grads = matcalc.compile(p).value_and_grad(x=x)
    y, dy = x, np.ones_like(x)
    for _ in range(100):
        y, dy = np.sin(y), dy * np.cos(y)
    np.testing.assert_allclose(value, y.sum(), rtol=1e-12)
    np.testing.assert_allclose(grads["x"], dy, rtol=1e-12)
