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

import builtins
import keyword
import re
import textwrap
import unicodedata
from typing import Protocol

from .._version import __version__
from ..ad.gradient import Gradient
from ..ir.expr import Const, Var, postorder
from ..ir.shapes import fmt, symbols as shape_symbols
from ..passes.lowering import Capabilities, lower
from ..passes.upstream import scale_adjoints
from .dims import dim_lines as _dim_lines
from .wrapping import WIDTH, wrap
from .text import TextPrinter, declarations

# Names the generated module itself defines or uses.
RESERVED = {"forward", "backward", "value_and_grad", "INPUTS", "WRT", "SHAPES",
            "dtype", "cache", "dout", "inputs", "name", "value", "grads", "g", "hessian", "hvp",
            "jacobian", "v", "out", "index", "arrays"}

# The inputs' floating type, which constant arrays (np.ones, np.eye) take so
# that float32 stays float32: a key no matcalc name can be, and the Python
# name the operator forms use.
DTYPE, DTYPE_CODE = "<dtype>", "dtype"

# The names a full array built by stacking uses (targets without item
# assignment): the unit directions and the list of columns.
STACKING = frozenset({"units", "columns"})


def _reserved(target: Target) -> frozenset:
    """The names a target's code uses, with `STACKING`'s where it stacks."""
    stacking = STACKING if not target.capabilities.item_assignment else frozenset()
    return frozenset(target.reserved) | stacking | frozenset(getattr(target, "context", ()))


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


def _identifiers(names, reserved) -> dict[str, str]:
    """Every matcalc name the code uses, mapped to its Python identifier."""
    taken: set[str] = {DTYPE_CODE}
    return {**{n: python_name(n, taken, reserved) for n in dict.fromkeys(names)},
            DTYPE: DTYPE_CODE}


def _used_names(exprs, target: Target) -> list[str]:
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
        self.ident = _identifiers(names, _reserved(target))
        self.code, self.text = target.printer(self.ident), TextPrinter()
        self.value = program.value
        self.forward, self.backward = program.forward(), program.backward()
        self.seed = program.seed.name if program.seed is not None else None
        self.grads = [self.ident[name] for _, name in program.gradients]
        self.unscaled: dict = {}   # binding -> its expression before dout (early_dout)
        if self.seed is None and getattr(target, "early_dout", False):
            self.backward, self.unscaled = scale_adjoints(program, self.backward)
            self.ident["dout"] = "dout"
        self._cache()

    def _cache(self) -> None:
        """The dimensions forward defines, and what it hands backward."""
        problem = self.problem
        fwd_names = _used_names([b.expr for b in self.forward], self.target)
        self.fwd_dims = [n for n in fwd_names if n in problem.dims]
        defined = set(problem.variables) | {b.name for b in self.forward} | set(self.fwd_dims)
        bwd_names = _used_names([b.expr for b in self.backward], self.target)
        needed = set(bwd_names)
        self.cache = [n for n in [*problem.variables, *(b.name for b in self.forward),
                                  *self.fwd_dims] if n in needed and n in defined]
        bwd_dims = [n for n in bwd_names if n in problem.dims and n not in self.cache]
        self.cache += bwd_dims
        self.fwd_dims += [d for d in bwd_dims if d not in self.fwd_dims]
        self.dtype = DTYPE in fwd_names or DTYPE in bwd_names
        if DTYPE in bwd_names:
            self.cache.append(DTYPE)

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
        lines.append(f"return {ident[self.value]}, {_tuple_code(self.cached())}")
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
            lines.append(f"{_tuple_code(self.cached())} = cache")
        if self.seed is not None:
            lines += ["if dout is None:",
                      f"    raise TypeError('backward needs dout = ∂L/∂{value}, "
                      f"of shape {fmt(self.program.seed.shape)}')",
                      f"{ident[self.seed]} = dout"]
        if self.unscaled:
            lines += ["if dout is None:", "    dout = 1",
                      *self.target.guards.SCALAR_DOUT.strip("\n").split("\n")]
        lines += self.body(self.backward)
        lines.append(f"grads = {_tuple_code(self.grads)}")
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
        out += wrap(f"INPUTS = {_tuple(problem.variables)}", "")
        out += wrap(f"WRT = {_tuple(problem.wrt)}", "")
        shapes = guards.shapes(problem)
        out += shapes[:-1] + wrap(shapes[-1], "") + ["", ""]
        out += guards.checked(problem, self.ident, wrap) + ["", ""]
        emitters = [_SecondOrderEmitter(extra, self.target) for extra in extras]
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


class _SecondOrderEmitter:
    """`hessian(**inputs)`, `hvp(v, /, **inputs)` or `jacobian(**inputs)`."""

    def __init__(self, result, target: Target):
        self.result, self.problem, self.target = result, result.problem, target
        written = {name for e, (_, name) in zip(result.entries, result.code.gradients)
                   if e.form == "operator" and result.kind != "hvp"}  # columns of a full array
        self.program = lower(result.code, target.capabilities, written)
        names = [*self.problem.variables, *self.problem.dims,
                 *(e.direction.name for e in result.entries if e.direction is not None),
                 *(b.name for b in self.program.bindings)]
        self.ident = _identifiers(names, _reserved(target))
        self.code = target.printer(self.ident)

    def _depends_on(self, bindings, direction: str) -> set[str]:
        """The bindings that (transitively) use the direction."""
        out = {direction}
        for b in bindings:
            if any(isinstance(n, Var) and n.name in out for n in postorder([b.expr])):
                out.add(b.name)
        return out

    def _lines(self, bindings) -> list[str]:
        return [line for b in bindings
                for line in self.target.assignment(self.ident[b.name], b.expr, self.code)]

    def function(self) -> list[str]:
        result, problem, ident = self.result, self.problem, self.ident
        results = [name for _, name in self.program.gradients]
        bindings = self.program.needed(results)
        used = _used_names([b.expr for b in bindings], self.target)
        arrays = [e for e in result.entries if e.form == "operator" and result.kind != "hvp"]
        in_arrays = {s.name for e in result.entries if result.kind != "hvp"
                     and e.form in ("operator", "kron") for s in shape_symbols(e.shape)}
        dims = [n for n in problem.dims if n in used or n in in_arrays]
        args = ", ".join(ident[n] for n in problem.variables)
        lines = self.target.guards.call(args, by_name=True)
        if DTYPE in used or arrays:  # the floating inputs' type (not the indices')
            lines.append(self.target.result_type(", ".join(
                ident[n] for n, v in problem.variables.items() if v.domain != "int")))
        lines += _dim_lines(dims, problem, ident)
        single = len(result.entries) == 1
        if result.kind == "hvp":
            lines += [f"{ident[e.direction.name]} = _direction(v, {ident[e.of]}"
                      + (")" if single else f", {e.of!r})") for e in result.entries]
            lines += self._lines(bindings)
            head = "def hvp(v, /, **inputs):"  # an input may be named v
            doc = ('"""(H v)_X = Σ_Y ∂²L/∂X∂Y v_Y, about the cost of two gradients: v is '
                   'an array for one variable, else a dict by name, each of its '
                   'variable\'s shape."""')
        else:
            looped = set().union(*(self._depends_on(bindings, e.direction.name) | {name}
                                   for e, name in zip(result.entries, results)
                                   if e.form == "operator"))
            lines += self._lines([b for b in bindings if b.name not in looped])
            for e, name in zip(result.entries, results):
                if e.form == "operator":
                    lines += self._operator_loop(e, name, bindings)
                if e.form == "kron":
                    lines += self._unstacked(e, name)
            head = f"def {result.kind}(**inputs):"
            doc = (f'"""The {result.kind} of {problem.output_name}: '
                   + "; ".join(e.name + ("" if e.array_layout.startswith("[") else " is ")
                               + e.array_layout for e in result.entries) + '."""')
        values = [ident[name] for name in results]
        if result.kind == "hessian" and not single:
            lines += self._blocks(values)
        else:
            lines.append(f"return {values[0]}" if single else "return {" + ", ".join(
                f"{e.of!r}: {v}" for e, v in zip(result.entries, values)) + "}")
        body = [w for line in lines for w in wrap(line, "    ")]
        return [head] + ["    " + d for d in textwrap.wrap(doc, WIDTH - 4)] + body

    def _blocks(self, values: list[str]) -> list[str]:
        """`return {x: {y: H_x_y}}`, every block of the Hessian by the
        variables: those below the diagonal are the blocks above with their
        two groups of axes swapped, ∂²f/∂y∂x[j, i] = ∂²f/∂x∂y[i, j]."""
        variables = self.problem.variables
        pairs = [e.of.split(",") for e in self.result.entries]
        above = {(pair[0], pair[-1]): v for pair, v in zip(pairs, values)}
        order = list(dict.fromkeys(x for x, _ in above))
        taken, lines, blocks = set(self.ident.values()), [], {}
        for (x, y), v in above.items():
            blocks[x, y] = v
            if x == y:
                continue
            nx, ny = variables[x].ndim, variables[y].ndim
            name = python_name(f"H_{y}_{x}", taken, _reserved(self.target))
            axes = _tuple_code([str(k) for k in (*range(nx, nx + ny), *range(nx))])
            blocks[y, x] = name
            lines.append(f"{name} = {self.target.permute(v, axes)}" if nx and ny
                         else f"{name} = {v}")
        rows = {x: [f"{y!r}: {blocks[x, y]}" for y in order] for x in order}
        one = "return {" + ", ".join(f"{x!r}: {{{', '.join(r)}}}" for x, r in rows.items()) + "}"
        if len(one) <= WIDTH - 4:
            return lines + [one]
        lines.append("return {")
        for x, row in rows.items():
            if len(f"        {x!r}: {{{', '.join(row)}}},") <= WIDTH:
                lines.append(f"    {x!r}: {{{', '.join(row)}}},")
            else:
                lines += [f"    {x!r}: {{"] + [f"        {entry}," for entry in row] + ["    },"]
        return lines + ["}"]

    def _unstacked(self, entry, name) -> list[str]:
        """A Kronecker form K (rows vec(f), columns vec(X), columns stacked)
        as the array H[i, j, m, n] = K[i + P·j, m + N·n]: a reshape to (Q, P,
        K, N) and a swap within each pair of axes, no copy on NumPy."""
        out, (p, q, n, k) = self.ident[name], [self.code.dim(d) for d in entry.shape]
        stacked = self.target.reshape(out, f"({q}, {p}, {k}, {n})")
        return ["# the Kronecker form's rows and columns unstacked (vec stacks columns)",
                f"{out} = {self.target.permute(stacked, '(1, 0, 3, 2)')}"]

    def _operator_loop(self, entry, name, bindings) -> list[str]:
        """The full array of a linear map: its value at each unit direction."""
        ident = self.ident
        v, out = ident[entry.direction.name], ident[name]
        looped = self._depends_on(bindings, entry.direction.name)
        inner = [b for b in bindings if b.name in looped]
        vshape = _shape_code(entry.direction.shape, self.code)
        full = _shape_code(entry.shape, self.code)
        if not inner or inner[-1].name != name:  # a linear map free of v is 0
            return [f"{out} = {self.target.zeros(full)}"]
        if not self.target.capabilities.item_assignment:
            return self._stacked(entry, name, inner)
        block = [f"{out} = {self.target.empty(full)}",
                 f"for index in {self.target.indices(vshape)}:",
                 f"    {v} = {self.target.zeros(vshape)}",
                 f"    {v}[index] = 1"]
        block += ["    " + line for line in self._lines(inner[:-1])]
        block.append(f"    {out}[(...,) + index] = {self.code.doprint(inner[-1].expr)}")
        return block

    def _stacked(self, entry, name, inner) -> list[str]:
        """The full array without item assignment: the linear map's value at
        each unit direction (a row of the identity, reshaped), stacked along
        a last axis and reshaped to the value's shape + the direction's."""
        target, v, out = self.target, self.ident[entry.direction.name], self.ident[name]
        dims = [self.code.dim(d) for d in entry.direction.shape]
        size = " * ".join(dims) or "1"
        vshape = _shape_code(entry.direction.shape, self.code)
        value = _shape_code(entry.shape[:len(entry.shape) - len(dims)], self.code)
        block = [f"units = {target.eye(size)}", "columns = []",
                 f"for index in range({size}):",
                 f"    {v} = {target.reshape('units[index, :]', vshape)}"]
        block += ["    " + line for line in self._lines(inner[:-1])]
        full = target.reshape(target.stack("columns", value), _shape_code(entry.shape, self.code))
        block += [f"    columns.append({self.code.doprint(inner[-1].expr)})", f"{out} = {full}"]
        return block


def generate(gradient: Gradient, target: Target, extras=()) -> str:
    """The source of the module for `gradient` and any second-order results
    (`matcalc.second`: hessian, hvp, jacobian) on `target`, deterministic."""
    return _Emitter(gradient, target).module(extras)


def _shape_code(shape, printer) -> str:
    items = [printer.dim(d) for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _tuple(names) -> str:
    names = list(names)
    return "(" + ", ".join(repr(n) for n in names) + ("," if len(names) == 1 else "") + ")"


def _tuple_code(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


