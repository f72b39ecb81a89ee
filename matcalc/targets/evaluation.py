"""The value of an expression at given inputs, by the NumPy forms of the
generated code (the parser folds constants with it; the check uses it)."""

from __future__ import annotations

import numpy as np
import sympy

from ..ir.expr import Apply, Const, Var, postorder
from ..passes.lowering import lower_expr
from .numpy import CAPABILITIES, NumpyPrinter
from .forms import with_required
from .numpy_forms import HELPERS


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
    names |= {s.name for n in postorder([expr]) for k, v in getattr(n, "params", ())
              if k == "shape" for d in v for s in sympy.sympify(d).free_symbols}
    printer = _InlinePrinter({name: f"_v[{name!r}]" for name in names})
    scope = {"np": np, "_v": values, "dtype": np.dtype(np.float64)}
    used = with_required({node.op for node in postorder([expr]) if isinstance(node, Apply)})
    for op in sorted(used & set(HELPERS)):
        exec(HELPERS[op], scope)
    return eval(printer.doprint(lower_expr(expr, CAPABILITIES)), scope)
