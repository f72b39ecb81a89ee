"""The second-order functions of a generated module: `hessian(**inputs)`,
`hvp(v, /, **inputs)` and `jacobian(**inputs)`. A closed form is computed as
printed (a Kronecker form then unstacked to the array H[i, j, m, n]); a
linear map with none is applied to each unit direction, the columns filled
in (item assignment) or stacked; several Hessian blocks return nested by
name, those below the diagonal the blocks above transposed."""

from __future__ import annotations

import textwrap

from ..ir.expr import Var, postorder
from ..ir.shapes import symbols as shape_symbols
from ..passes.lowering import lower
from .dims import dim_lines
from .naming import (DTYPE, identifiers, python_name, reserved_names, shape_code, tuple_code,
                     used_names)
from .wrapping import WIDTH, wrap


class SecondOrderEmitter:
    """`hessian(**inputs)`, `hvp(v, /, **inputs)` or `jacobian(**inputs)`."""

    def __init__(self, result, target):
        self.result, self.problem, self.target = result, result.problem, target
        written = {name for e, (_, name) in zip(result.entries, result.code.gradients)
                   if e.form == "operator" and result.kind != "hvp"}  # columns of a full array
        self.program = lower(result.code, target.capabilities, written)
        names = [*self.problem.variables, *self.problem.dims,
                 *(e.direction.name for e in result.entries if e.direction is not None),
                 *(b.name for b in self.program.bindings)]
        self.ident = identifiers(names, reserved_names(target))
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
        used = used_names([b.expr for b in bindings], self.target)
        arrays = [e for e in result.entries if e.form == "operator" and result.kind != "hvp"]
        in_arrays = {s.name for e in result.entries if result.kind != "hvp"
                     and e.form in ("operator", "kron") for s in shape_symbols(e.shape)}
        dims = [n for n in problem.dims if n in used or n in in_arrays]
        args = ", ".join(ident[n] for n in problem.variables)
        lines = self.target.guards.call(args, by_name=True)
        if DTYPE in used or arrays:  # the floating inputs' type (not the indices')
            lines.append(self.target.result_type(", ".join(
                ident[n] for n, v in problem.variables.items() if v.domain != "int")))
        lines += dim_lines(dims, problem, ident)
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
            name = python_name(f"H_{y}_{x}", taken, reserved_names(self.target))
            axes = tuple_code([str(k) for k in (*range(nx, nx + ny), *range(nx))])
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
        vshape = shape_code(entry.direction.shape, self.code)
        full = shape_code(entry.shape, self.code)
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
        vshape = shape_code(entry.direction.shape, self.code)
        value = shape_code(entry.shape[:len(entry.shape) - len(dims)], self.code)
        block = [f"units = {target.eye(size)}", "columns = []",
                 f"for index in range({size}):",
                 f"    {v} = {target.reshape('units[index, :]', vshape)}"]
        block += ["    " + line for line in self._lines(inner[:-1])]
        full = target.reshape(target.stack("columns", value), shape_code(entry.shape, self.code))
        block += [f"    columns.append({self.code.doprint(inner[-1].expr)})", f"{out} = {full}"]
        return block
