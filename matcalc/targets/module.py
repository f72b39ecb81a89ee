"""The layout of a generated module, whatever array library it runs on.

The module defines `INPUTS`, `WRT`, `forward(*inputs) -> (value, cache)`,
`backward(cache, dout=None) -> gradients in WRT order` and
`value_and_grad(dout=None, /, **inputs) -> (value, {name: gradient})`, and
with second-order results `hessian`, `hvp` or `jacobian`. `forward` computes
every named intermediate once and hands `backward` what it needs. Every
function taking inputs checks them first, and constants are made in the
inputs' floating type (`dtype`). Only validated identifiers and numbers from
the problem reach the code; names that are Python keywords or builtins are
renamed (`lambda_`).

The program is lowered for the target (`passes.lowering.lower`, by the
target's `capabilities`) and printed by the target's printer; the target
(see `Target`) supplies what its library spells its own way.
"""

from __future__ import annotations

import textwrap
from typing import Protocol

from .._version import __version__
from ..ad.gradient import Gradient
from ..ir.shapes import fmt
from ..passes.lowering import Capabilities, lower
from ..passes.upstream import DOUT, scale_adjoints
from .dims import dim_lines as _dim_lines
from .naming import (DTYPE, OUT_SHAPE, identifiers, names_tuple, reserved_names, tuple_code,
                     used_names)
from .second_order_code import SecondOrderEmitter
from .wrapping import WIDTH, wrap
from .text import TextPrinter, declarations

class Target(Protocol):
    """What a code target supplies to the layout: its lowering capabilities,
    its printer, its names and the statements its library writes its own
    way (the input checks `guards` provides as `targets.guards` does)."""

    capabilities: Capabilities
    imports: tuple          # the module's import lines
    reserved: frozenset     # names the target's code uses (np, helper functions)
    guards: object

    def printer(self, ident: dict):
        """The code printer, naming matcalc names by `ident`."""

    def assignment(self, target: str, expr, printer) -> list[str]:
        """The statements `target = expr` for a lowered expression."""

    def needs_dtype(self, node) -> bool:
        """Whether printing the lowered `node` names `dtype`."""

    def helpers(self, exprs) -> list[str]:
        """The sources of the helper functions the expressions call."""

    def result_type(self, args: str) -> str:
        """`dtype = ...`: the inputs' floating type."""

    def zeros(self, shape: str) -> str:
        """An array of zeros of the printed shape, of type `dtype`."""

    def empty(self, shape: str) -> str:
        """An uninitialised array of the printed shape, of type `dtype`."""

    def indices(self, shape: str) -> str:
        """An iterable of every index tuple of the printed shape."""

    # A target may add `note: str`, a sentence for the module's docstring, and
    # `early_dout = True`: dout multiplies the first adjoints (`passes.upstream`).
    # Without item assignment, a full array is stacked from its columns
    # (`STACKING` names), and forward hands backward the names in `context`
    # (the array namespace), which each function's input check defines.
    context: tuple

    def eye(self, size: str) -> str:
        """The identity of the printed size, of type `dtype`."""

    def reshape(self, x: str, shape: str) -> str:
        """Array `x` in the printed shape (C order)."""

    def permute(self, x: str, axes: str) -> str:
        """Array `x` with its axes in the printed order."""

    def stack(self, items: str, shape: str) -> str:
        """The arrays of the list `items`, each broadcast to the printed
        shape, stacked along a new last axis."""


def in_place(target: str, expr, printer) -> list[str]:
    """The statements of a lowered `update`: `t = A @ B`, then `t += c`,
    `t -= d`, `t *= m` (a target's `assignment`)."""
    product, *terms = (printer.doprint(a) for a in expr.args)
    return [f"{target} = {product}"] + [
        f"{target} {op}= {term}" for op, term in zip(expr.param("ops"), terms)]


def _comment(binding, text: str, code: str, value: str, dout: str = "") -> str | None:
    """`# dZ = ∂L/∂Z = textbook form`; `dout` "carried": `# dZ = dout · ∂L/∂Z = ...`,
    "taken" (multiplied in there): `# dt = dout · ∂L/∂t, ∂L/∂t = ...`."""
    meaning = {"adjoint": f"∂{value}/∂{binding.of}",
               "gradient": f"∂{value}/∂{binding.of}"}.get(binding.role)
    shown = text if text != code else None
    if meaning and dout == "taken" and shown:
        return f"# {binding.name} = dout · {meaning}, {meaning} = {shown}"
    if meaning and dout:
        meaning = "dout · " + meaning
    parts = [p for p in (meaning, shown) if p]
    return f"# {binding.name} = " + " = ".join(parts) if parts else None


class _Emitter:
    """Writes the module for one gradient, function by function."""

    def __init__(self, gradient: Gradient, target: Target):
        self.problem, self.target = gradient.problem, target
        self.textbook = gradient.code or gradient.program  # the comments show it
        self.program = lower(self.textbook, target.capabilities)
        program, problem = self.program, self.problem
        names = [*problem.variables, *problem.dims,
                 *([program.seed.name] if program.seed is not None else []),
                 *(b.name for b in program.bindings)]
        self.ident = identifiers(names, reserved_names(target))
        self.code, self.text = target.printer(self.ident), TextPrinter()
        self.value = program.value
        self.forward, self.backward = program.forward(), program.backward()
        self.seed = program.seed.name if program.seed is not None else None
        self.grads = [self.ident[name] for _, name in program.gradients]
        self.unscaled: dict = {}   # binding -> its expression before dout (early_dout)
        if self.seed is None and getattr(target, "early_dout", False):
            self.backward, self.unscaled = scale_adjoints(program, self.backward)
            self.ident[DOUT] = "dout"
        self._cache()

    def _cache(self) -> None:
        """The dimensions forward defines, and what it hands backward."""
        problem = self.problem
        fwd_names = used_names([b.expr for b in self.forward], self.target)
        self.fwd_dims = [n for n in fwd_names if n in problem.dims]
        defined = set(problem.variables) | {b.name for b in self.forward} | set(self.fwd_dims)
        bwd_names = used_names([b.expr for b in self.backward], self.target)
        needed = set(bwd_names)
        self.cache = [n for n in [*problem.variables, *(b.name for b in self.forward),
                                  *self.fwd_dims] if n in needed and n in defined]
        bwd_dims = [n for n in bwd_names if n in problem.dims and n not in self.cache]
        self.cache += bwd_dims
        self.fwd_dims += [d for d in bwd_dims if d not in self.fwd_dims]
        self.dtype = DTYPE in fwd_names or DTYPE in bwd_names
        if DTYPE in bwd_names:
            self.cache.append(DTYPE)
        if self.seed is not None:  # backward checks dout's shape against it
            self.cache.append(OUT_SHAPE)
            self.ident[OUT_SHAPE] = "dout_shape"

    def cached(self) -> list[str]:
        """The code names forward hands backward: the cache, then the
        target's context (its array namespace) where backward computes."""
        context = list(getattr(self.target, "context", ())) if self.backward else []
        return [self.ident[n] for n in self.cache] + context

    def body(self, bindings) -> list[str]:
        """The bindings' statements, each after a comment with its meaning
        and its textbook form where the code differs."""
        textbook = {b.name: b.expr for b in self.textbook.bindings}
        lines = []
        for b in bindings:
            code = self.target.assignment(self.ident[b.name], b.expr, self.code)
            shown = self.target.assignment(self.ident[b.name], self.unscaled[b.name], self.code) \
                if b.name in self.unscaled else code
            comment = _comment(b, self.text.doprint(textbook[b.name]),
                               shown[0].partition(" = ")[2] if len(shown) == 1 else "",
                               self.value, ("taken" if b.name in self.unscaled
                                            else "carried") if self.unscaled else "")
            if comment:
                lines.append(comment)
            lines += code
        return lines

    def _as_written(self, name: str, node) -> str:
        """A definition as the user wrote it, else as built."""
        return self.problem.written.get(name) or self.text.define(node)

    def docstring(self) -> list[str]:
        problem, value = self.problem, self.value
        out = [f'"""Value and gradients of {value}, generated by matcalc {__version__}.', ""]
        for name, node in problem.intermediates.items():
            out += wrap(f"{name} = {self._as_written(name, node)}", "    ")
        if value not in problem.intermediates:
            out += wrap(f"{value} = {self._as_written(value, problem.output)}", "    ")
        shapes = {w: problem.variables[w].shape for w in problem.wrt}
        out += [""] + textwrap.wrap("Inputs: " + ", ".join(declarations(problem)), WIDTH)
        out += textwrap.wrap("Gradients: " + ", ".join(
            f"{name} = ∂{value}/∂{w} ({fmt(shapes[w])})"
            for w, name in self.program.gradients), WIDTH, break_on_hyphens=False)
        note = getattr(self.target, "note", "")  # what the module needs to run
        return out + ([""] + textwrap.wrap(note, WIDTH) if note else []) + ['"""']

    def forward_function(self) -> list[str]:
        ident = self.ident
        args = ", ".join(ident[n] for n in self.problem.variables)
        lines = self.target.guards.call(args)
        if self.dtype:  # the floating inputs' type (integer inputs are indices)
            lines.append(self.target.result_type(", ".join(
                ident[n] for n, v in self.problem.variables.items() if v.domain != "int")))
        lines += _dim_lines(self.fwd_dims, self.problem, ident) + self.body(self.forward)
        if self.seed is not None:
            lines.append(f"{ident[OUT_SHAPE]} = tuple({ident[self.value]}.shape)")
        lines.append(f"return {ident[self.value]}, {tuple_code(self.cached())}")
        signature = [f"def forward({args}):"]
        if len(signature[0]) > WIDTH:
            signature = ["def forward("] + ["        " + p for p in textwrap.wrap(
                args, WIDTH - 8, break_long_words=False)]
            signature[-1] += "):"
        return (signature +
                [f'    """Return ({self.value}, cache) for inputs as `_checked` takes them;',
                 '    cache holds what backward needs."""']
                + [w for line in lines for w in wrap(line, "    ")])

    def backward_function(self) -> list[str]:
        ident, value = self.ident, self.value
        lines = []
        if self.cached():
            lines.append(f"{tuple_code(self.cached())} = cache")
        if self.seed is not None:
            lines += ["if dout is None:",
                      f"    raise TypeError('backward needs dout = ∂L/∂{value}, "
                      f"of shape {fmt(self.program.seed.shape)}')",
                      *self.target.guards.ARRAY_DOUT.strip("\n").split("\n"),
                      f"{ident[self.seed]} = dout"]
        if self.unscaled:
            lines += ["if dout is None:", "    dout = 1",
                      *self.target.guards.SCALAR_DOUT.strip("\n").split("\n")]
        lines += self.body(self.backward)
        lines.append(f"grads = {tuple_code(self.grads)}")
        if self.seed is None and not self.unscaled:
            lines += ["if dout is not None:",
                      *("    " + line for line in self.target.guards.SCALAR_DOUT.strip("\n").split("\n")),
                      "    grads = tuple(dout * g for g in grads)"]
        lines.append("return grads")
        scaled = "times dout (default 1)" if self.seed is None else "given dout = ∂L/∂" + value
        doc = textwrap.wrap(f'"""Return ({", ".join(self.grads)}), the gradients of '
                            f'{value} {scaled}."""', WIDTH - 4, break_on_hyphens=False)
        return (["def backward(cache, dout=None):"] + ["    " + d for d in doc]
                + [w for line in lines for w in wrap(line, "    ")])

    def module(self, extras=()) -> str:
        problem, guards = self.problem, self.target.guards
        out = self.docstring() + ["", *self.target.imports, ""]
        out += wrap(f"INPUTS = {names_tuple(problem.variables)}", "")
        out += wrap(f"WRT = {names_tuple(problem.wrt)}", "")
        shapes = guards.shapes(problem)
        out += shapes[:-1] + wrap(shapes[-1], "") + ["", ""]
        out += guards.checked(problem, self.ident, wrap) + ["", ""]
        emitters = [SecondOrderEmitter(extra, self.target) for extra in extras]
        helpers = self.target.helpers([b.expr for p in (self.program, *(e.program for e in emitters))
                                       for b in p.bindings])
        if any(e.kind == "hvp" for e in extras):  # hvp's check of its direction v
            helpers.append(guards.DIRECTION)
        for helper in helpers:
            out += [helper.strip("\n"), "", ""]
        out += self.forward_function() + ["", ""] + self.backward_function() + ["", ""]
        out += ["def value_and_grad(dout=None, /, **inputs):",
                f'    """Return ({self.value}, {{name: gradient}}) for inputs named as in',
                '    INPUTS, as `_checked` takes them; dout as for backward."""',
                "    value, cache = forward(*_by_name(inputs))",
                "    return value, dict(zip(WRT, backward(cache, dout)))", ""]
        for emitter in emitters:
            out[-1:] = ["", ""] + emitter.function() + [""]
        return "\n".join(out)


def generate(gradient: Gradient, target: Target, extras=()) -> str:
    """The source of the module for `gradient` and any second-order results
    (`matcalc.second`: hessian, hvp, jacobian) on `target`, deterministic."""
    return _Emitter(gradient, target).module(extras)
