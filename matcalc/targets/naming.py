"""The names a generated module uses: the Python identifier of each matcalc
name (never a keyword, builtin or name the module defines), the names the
lowered expressions mention, and tuples and shapes as code."""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

from ..ir.expr import Const, Var, postorder
from ..ir.shapes import symbols as shape_symbols

# Names the generated module itself defines or uses.
RESERVED = {"forward", "backward", "value_and_grad", "INPUTS", "WRT", "SHAPES",
            "dtype", "cache", "dout", "inputs", "name", "value", "grads", "g", "hessian", "hvp",
            "jacobian", "v", "out", "index", "arrays",
            "usual",  # the inputs' checks' fast path sets it beside the inputs' names
            "dout_shape"}

# The shape of an array-valued function's value, which forward hands
# backward to check dout by: a key no matcalc name can be.
OUT_SHAPE = "<out shape>"

# The inputs' floating type, which constant arrays (np.ones, np.eye) take so
# that float32 stays float32: a key no matcalc name can be, and the Python
# name the operator forms use.
DTYPE, DTYPE_CODE = "<dtype>", "dtype"

# The names a full array built by stacking uses (targets without item
# assignment): the unit directions and the list of columns.
STACKING = frozenset({"units", "columns"})


def reserved_names(target) -> frozenset:
    """The names a target's code uses, with `STACKING`'s where it stacks."""
    stacking = STACKING if not target.capabilities.item_assignment else frozenset()
    return frozenset(target.reserved) | stacking | frozenset(getattr(target, "context", ()))


def python_name(name: str, taken: set[str], reserved=frozenset()) -> str:
    """A safe, unused Python identifier for a matcalc name."""
    ident = unicodedata.normalize("NFKC", name)
    ident = re.sub(r"\W", lambda m: f"_{ord(m.group()):x}", ident)
    if not ident.isidentifier():
        ident = "v_" + ident
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident) or ident in RESERVED \
            or ident in reserved or hasattr(builtins, ident):
        ident += "_"
    base, k = ident, 2
    while ident in taken:
        ident, k = f"{base}_{k}", k + 1
    taken.add(ident)
    return ident


def identifiers(names, reserved) -> dict[str, str]:
    """Every matcalc name the code uses, mapped to its Python identifier."""
    taken: set[str] = {DTYPE_CODE}
    return {**{n: python_name(n, taken, reserved) for n in dict.fromkeys(names)},
            DTYPE: DTYPE_CODE}


def used_names(exprs, target) -> list[str]:
    """Variable and dimension names the lowered expressions mention, in
    order (and `DTYPE` where the code names the inputs' floating type)."""
    out: dict[str, None] = {}
    if any(isinstance(e, Const) for e in exprs):
        out[DTYPE] = None  # a constant result, made in the inputs' type
    for node in postorder(exprs):
        if target.needs_dtype(node):
            out[DTYPE] = None
        if isinstance(node, Var):
            out[node.name] = None
        elif isinstance(node, Const):
            for s in sorted(node.value.free_symbols, key=str):
                out[s.name] = None
        for key, value in getattr(node, "params", ()):
            if key == "shape":
                for s in sorted(shape_symbols(value), key=str):
                    out[s.name] = None
            elif key == "key":  # a slice's symbolic bounds (concatenate's parts)
                for s in sorted(shape_symbols([b for e in value if isinstance(e, tuple)
                                               for b in e if b is not None]), key=str):
                    out[s.name] = None
    return list(out)


def shape_code(shape, printer) -> str:
    items = [printer.dim(d) for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def names_tuple(names) -> str:
    names = list(names)
    return "(" + ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "") + ")"


def tuple_code(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
