"""A readable NumPy module computing the function and its gradients.

The module defines `INPUTS`, `WRT`, `forward(*inputs) -> (value, cache)`,
`backward(cache, dout=None) -> gradients in WRT order` and
`value_and_grad(dout=None, /, **inputs) -> (value, {name: gradient})`.
`forward` computes every named intermediate once and hands `backward` what it
needs. Only validated identifiers and numbers from the problem reach the
code; names that are Python keywords or builtins are renamed (`lambda_`).
"""

from __future__ import annotations

import builtins
import keyword
import linecache
import re
import types
import unicodedata

import sympy

from . import __version__
from .expr import Const, Var, postorder
from .gradient import Gradient
from .printing.base import Printer
from .printing.text import TextPrinter, declarations
from .shapes import fmt, symbols as shape_symbols

# Names the generated module itself defines or uses.
_RESERVED = {"np", "forward", "backward", "value_and_grad", "INPUTS", "WRT",
             "cache", "dout", "inputs", "name", "value", "grads", "g"}


def python_name(name: str, taken: set[str]) -> str:
    """A safe, unused Python identifier for a matcalc name."""
    ident = unicodedata.normalize("NFKC", name)
    ident = re.sub(r"\W", lambda m: f"_{ord(m.group()):x}", ident)
    if not ident.isidentifier():
        ident = "v_" + ident
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident) or \
            ident in _RESERVED or hasattr(builtins, ident):
        ident += "_"
    base, k = ident, 2
    while ident in taken:
        ident, k = f"{base}_{k}", k + 1
    taken.add(ident)
    return ident


class NumpyPrinter(Printer):
    language = "numpy"


def _identifiers(gradient: Gradient) -> dict[str, str]:
    """Every matcalc name the code uses, mapped to its Python identifier."""
    problem, program = gradient.problem, gradient.program
    taken: set[str] = set()
    names = [*problem.variables, *problem.dims]
    if program.seed is not None:
        names.append(program.seed.name)
    names += [b.name for b in program.bindings]
    return {n: python_name(n, taken) for n in dict.fromkeys(names)}


def _used_names(exprs) -> list[str]:
    """Variable and dimension names the expressions mention, in order."""
    out: dict[str, None] = {}
    for node in postorder(exprs):
        if isinstance(node, Var):
            out[node.name] = None
        elif isinstance(node, Const):
            for s in sorted(node.value.free_symbols, key=str):
                out[s.name] = None
        for key, value in getattr(node, "params", ()):
            if key == "shape":
                for s in sorted(shape_symbols(value), key=str):
                    out[s.name] = None
    return list(out)


def _dim_lines(dims: list[str], problem, ident) -> list[str]:
    """`N, D = X.shape` lines that define the dimensions the code uses."""
    lines, pending = [], list(dims)
    for name, v in problem.variables.items():
        here = [str(d) for d in v.shape]
        found = [d for d in pending if d in here]
        if not found:
            continue
        if len(found) == len(here) == 2 and here[0] != here[1]:
            lines.append(f"{ident[here[0]]}, {ident[here[1]]} = {ident[name]}.shape")
        else:
            lines += [f"{ident[d]} = {ident[name]}.shape[{here.index(d)}]" for d in found]
        pending = [d for d in pending if d not in found]
    return lines


def _comment(binding, text: str, code: str, value: str) -> str | None:
    meaning = {"adjoint": f"∂{value}/∂{binding.of}",
               "gradient": f"∂{value}/∂{binding.of}"}.get(binding.role)
    parts = [p for p in (meaning, text if text != code else None) if p]
    return f"# {binding.name} = " + " = ".join(parts) if parts else None


def generate(gradient: Gradient) -> str:
    """The source of the module for `gradient` (deterministic)."""
    problem, program = gradient.problem, gradient.program
    ident = _identifiers(gradient)
    code, text = NumpyPrinter(ident), TextPrinter()
    value_name = program.value
    forward, backward = program.forward(), program.backward()
    inputs = [ident[n] for n in problem.variables]

    def body(bindings, scalar_out):
        lines = []
        for b in bindings:
            line = f"{ident[b.name]} = {code.doprint(b.expr)}"
            comment = _comment(b, text.doprint(b.expr), code.doprint(b.expr),
                               scalar_out)
            if comment:
                lines.append(comment)
            lines.append(line)
        return lines

    fwd_names = _used_names([b.expr for b in forward])
    fwd_dims = [n for n in fwd_names if n in problem.dims]
    defined = set(problem.variables) | {b.name for b in forward} | set(fwd_dims)
    bwd_names = _used_names([b.expr for b in backward])
    seed = program.seed.name if program.seed is not None else None
    needed = set(bwd_names)
    cache = [n for n in [*problem.variables, *(b.name for b in forward), *fwd_dims]
             if n in needed and n in defined]
    bwd_dims = [n for n in bwd_names if n in problem.dims and n not in cache]
    cache += bwd_dims
    fwd_dims += [d for d in bwd_dims if d not in fwd_dims]
    grads = [ident[name] for _, name in program.gradients]
    shapes = dict(zip(problem.wrt, (problem.variables[w].shape for w in problem.wrt)))

    out = ['"""' + f"Value and gradients of {value_name}, generated by matcalc {__version__}.",
           ""]
    definition = TextPrinter(named=problem.names())
    for name, node in problem.intermediates.items():
        out.append(f"    {name} = {definition.define(node)}")
    if value_name not in problem.intermediates:
        out.append(f"    {value_name} = {definition.define(problem.output)}")
    out += ["", "Inputs: " + ", ".join(declarations(problem)),
            "Gradients: " + ", ".join(
                f"{name} = ∂{value_name}/∂{w} ({fmt(shapes[w])})"
                for w, name in program.gradients),
            '"""', "", "import numpy as np", "",
            f"INPUTS = {_tuple(problem.variables)}",
            f"WRT = {_tuple(problem.wrt)}", "", ""]

    out.append(f"def forward({', '.join(inputs)}):")
    out.append(f'    """Return ({value_name}, cache); cache holds what backward needs."""')
    fwd = _dim_lines(fwd_dims, problem, ident) + body(forward, value_name)
    fwd.append(f"return {ident[value_name]}, {_tuple_code([ident[n] for n in cache])}")
    out += ["    " + line for line in fwd] + ["", ""]

    out.append("def backward(cache, dout=None):")
    scaled = "times dout (default 1)" if seed is None else "given dout"
    out.append(f'    """Return ({", ".join(grads)}), the gradients of {value_name} {scaled}."""')
    bwd = []
    if cache:
        bwd.append(f"{', '.join(ident[n] for n in cache)}{',' if len(cache) == 1 else ''} = cache")
    if seed is not None:
        bwd += ["if dout is None:",
                f"    raise TypeError('backward needs dout = ∂L/∂{value_name}, of shape "
                f"{fmt(program.seed.shape)}')",
                f"{ident[seed]} = dout"]
    bwd += body(backward, value_name)
    if seed is None:
        bwd += ["if dout is not None:",
                f"    {', '.join(grads)}{',' if len(grads) == 1 else ''} = "
                + ", ".join(f"dout * {g}" for g in grads)]
    bwd.append(f"return {_tuple_code(grads)}")
    out += ["    " + line for line in bwd] + ["", ""]

    out += ["def value_and_grad(dout=None, /, **inputs):",
            f'    """Return ({value_name}, {{name: gradient}}) for inputs named as in INPUTS."""',
            "    value, cache = forward(*(inputs[name] for name in INPUTS))",
            "    return value, dict(zip(WRT, backward(cache, dout)))", ""]
    return "\n".join(out)


def _tuple(names) -> str:
    names = list(names)
    return "(" + ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "") + ")"


def _tuple_code(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def load(source: str, name: str) -> types.ModuleType:
    """Execute generated source as a module whose `.source` is the text."""
    filename = f"<matcalc {name}>"
    module = types.ModuleType(f"matcalc_generated_{name}")
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    module.source = source
    return module
