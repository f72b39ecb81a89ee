"""The value of an expression at given inputs, by the NumPy forms of the
generated code (the parser folds constants with it; the check uses it)."""

from __future__ import annotations

import numpy as np

from .numpy import CAPABILITIES, NumpyPrinter
from ..ir.expr import Apply, Const, Var, postorder
from ..ops import OPS
from ..passes.lowering import lower_expr


class _InlinePrinter(NumpyPrinter):
    """NumPy source that writes a named intermediate as its expression."""

    def _print_name(self, node: Apply) -> tuple[str, int]:
        return self._print_adjoint(node)


def evaluate(expr, values: dict) -> np.ndarray:
    """The value of `expr`, its variables and dimensions taken from `values`
    by name (through the same NumPy forms as the generated code)."""
    names = {n.name for n in postorder([expr]) if isinstance(n, Var)}
    names |= {s.name for n in postorder([expr]) if isinstance(n, Const)
              for s in n.value.free_symbols}
    names |= {str(d) for n in postorder([expr]) for k, v in getattr(n, "params", ())
              if k == "shape" for d in v}
    printer = _InlinePrinter({name: f"_v[{name!r}]" for name in names})
    scope = {"np": np, "_v": values, "dtype": np.dtype(np.float64)}
    for node in postorder([expr]):
        if isinstance(node, Apply) and OPS[node.op].helper:
            exec(OPS[node.op].helper, scope)
    return eval(printer.doprint(lower_expr(expr, CAPABILITIES)), scope)
