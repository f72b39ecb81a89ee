"""The lines of a generated function that read the dimensions it uses
from the inputs' shapes: `N, D = X.shape`, and `E = X.shape[2] // 2` for a
dimension that only a declared product (D = H * E) gives."""

from __future__ import annotations

import sympy


def dim_lines(dims: list[str], problem, ident) -> list[str]:
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
    return lines + solved_dims(pending, problem, ident, set(dims) - set(pending))


def solved_dims(pending: list[str], problem, ident, known: set) -> list[str]:
    """`E = X.shape[2] // H` for each dimension only a declared product
    (D = H * E) gives, once the product's other factors are read (`known`:
    those read already)."""
    lines = []
    while pending:
        for name, k, p in ((n, k, p) for n, v in problem.variables.items()
                           for k, d in enumerate(v.shape) for p in pending
                           if problem.dims[p] in d.free_symbols):
            rest = sympy.cancel(problem.variables[name].shape[k] / problem.dims[p])
            others = {str(s) for s in rest.free_symbols}
            read = dim_lines(sorted(others - known), problem, ident) if others - known else []
            if problem.dims[p] in rest.free_symbols or len(read) < len(others - known):
                continue
            divisor = " * ".join(ident.get(str(f), str(f)) for f in sympy.Mul.make_args(rest))
            divisor = f"({divisor})" if " * " in divisor else divisor
            lines += read + [f"{ident[p]} = {ident[name]}.shape[{k}] // {divisor}"]
            known |= others | {p}
            pending.remove(p)
            break
        else:
            return lines
    return lines
