"""Numerical check: derived gradients against central finite differences.

Inputs are drawn at random in each variable's declared domain (onehot, sign,
positive; see `matcalc.inputs`), else in each function's domain (positive
under log, sqrt and fractional powers; symmetric positive definite under
inv, det and logdet), or given by the user; the generated `backward` is compared with
(f(x + h e_i) - f(x - h e_i)) / 2h for every entry of every variable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from .emit import generate, load
from .errors import DomainError, MatcalcError
from .expr import Apply, Const, Var, postorder
from .gradient import derive
from .inputs import prepare, sample
from .ops import OPS

DEFAULT_SIZES = (3, 4, 5, 6, 7, 8, 9, 10)
MAX_ENTRIES = 100_000  # two function evaluations per entry


@dataclass(frozen=True)
class CheckResult:
    """Max relative error of each gradient, and whether all are within `tol`."""

    errors: dict[str, float]
    tol: float
    dims: dict[str, int]
    value: float | np.ndarray

    @property
    def ok(self) -> bool:
        return all(e <= self.tol for e in self.errors.values())

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        lines = [f"finite-difference check ({dims}; tolerance {self.tol:g})" if dims
                 else f"finite-difference check (tolerance {self.tol:g})"]
        width = max(len(n) for n in self.errors) if self.errors else 0
        for name, err in self.errors.items():
            verdict = "ok" if err <= self.tol else "MISMATCH"
            lines.append(f"  d{name:<{width}}  max rel. error {err:.2e}  {verdict}")
        return "\n".join(lines)


def sizes(problem, dims: dict[str, int] | None = None) -> dict[str, int]:
    """Concrete sizes: the given ones, else small distinct defaults."""
    dims = dict(dims or {})
    for name in dims:
        if name not in problem.dims:
            raise MatcalcError(f"--dims names '{name}', which is not a dimension of the problem")
        if not isinstance(dims[name], (int, np.integer)) or dims[name] < 1:
            raise MatcalcError(f"dimension {name} must be a positive integer")
    free = (s for s in DEFAULT_SIZES if s not in dims.values())
    for name in problem.dims:
        if name not in dims:
            dims[name] = next(free, 3)
    concrete = {name: int(dims[name]) for name in problem.dims}
    entries = sum(int(sympy.Mul(*v.shape).subs({problem.dims[k]: n for k, n in concrete.items()}))
                  for v in problem.variables.values())
    if entries > MAX_ENTRIES:
        raise MatcalcError(f"{entries} input entries are too many for a finite-difference "
                           f"check (at most {MAX_ENTRIES}); give smaller --dims")
    return concrete


def domains(problem) -> dict[str, str]:
    """'positive', 'unit' (|x| < 1) or 'spd' for each variable some function
    restricts (an spd need wins over the others)."""
    need: dict[str, str] = {}
    for node in postorder([problem.output]):
        if not isinstance(node, Apply):
            continue
        domain = OPS[node.op].domain
        if node.op == "pow":
            e = node.args[1]
            if not (isinstance(e, Const) and e.value.is_integer):
                domain = "positive"
        if not domain:
            continue
        arg = node.args[0]
        if domain == "spd" and isinstance(arg, Var):
            need[arg.name] = "spd"
        elif domain in ("positive", "unit"):
            for leaf in postorder([arg]):
                if isinstance(leaf, Var) and need.get(leaf.name) != "spd":
                    need[leaf.name] = domain
    return need


def draw(problem, dims: dict[str, int], rng) -> dict[str, np.ndarray]:
    """Random inputs of the declared shapes, in each variable's declared
    domain, else in the domain its functions need (see `matcalc.inputs`)."""
    need = domains(problem)
    out = {}
    for name, v in problem.variables.items():
        shape = tuple(int(d.subs({problem.dims[k]: n for k, n in dims.items()}))
                      for d in v.shape)
        out[name] = sample(v, shape, need.get(name), rng)
    return out


def evaluate(expr, values: dict) -> np.ndarray:
    """The value of `expr`, its variables and dimensions taken from `values`
    by name (through the same NumPy forms as the generated code)."""
    from .emit import NumpyPrinter
    names = {n.name for n in postorder([expr]) if isinstance(n, Var)}
    names |= {s.name for n in postorder([expr]) if isinstance(n, Const)
              for s in n.value.free_symbols}
    names |= {str(d) for n in postorder([expr]) for k, v in getattr(n, "params", ())
              if k == "shape" for d in v}
    printer = NumpyPrinter({name: f"_v[{name!r}]" for name in names})
    printer._print_name = printer._print_adjoint  # an intermediate: its expression
    scope = {"np": np, "_v": values, "dtype": np.float64}
    for node in postorder([expr]):
        if isinstance(node, Apply) and OPS[node.op].helper:
            exec(OPS[node.op].helper, scope)
    return eval(printer.doprint(expr), scope)


def finite_differences(f, inputs: dict, name: str, eps: float,
                       symmetric: bool = False) -> np.ndarray:
    """Central differences of the scalar function f(inputs) by inputs[name];
    with `symmetric`, along E_ij + E_ji (so entry (i, j) estimates
    G_ij + G_ji = 2 G_ij off the diagonal for the symmetric gradient G)."""
    x = np.array(inputs[name], dtype=np.float64)
    grad = np.zeros_like(x)

    def at(point):
        return f({**inputs, name: point if point.ndim else float(point)})

    for index in np.ndindex(x.shape):
        h = eps * max(1.0, abs(x[index]))
        step = np.zeros_like(x)
        step[index] = h
        if symmetric:
            step[index[::-1]] = h
        grad[index] = (at(x + step) - at(x - step)) / (2 * h)
    return grad


# Central differences of a float64 function of size |f| carry rounding noise
# of about 1e-16 |f| / eps = 1e-10 |f|; errors are measured against at least
# FLOOR |f|, so that only differences above tol * FLOOR |f| = 1e-8 |f| (two
# orders above that noise) count, even where the true gradient is 0.
FLOOR = 1e-2


def relative_error(g, fd, value: float) -> float:
    """‖g − fd‖∞ / max(‖fd‖∞, ‖g‖∞, FLOOR · max(1, |value|))."""
    g, fd = np.asarray(g, dtype=np.float64), np.asarray(fd, dtype=np.float64)
    if g.shape != fd.shape:
        return float("inf")
    scale = max(np.max(np.abs(fd), initial=0.0), np.max(np.abs(g), initial=0.0),
                FLOOR * max(1.0, abs(value)))
    return float(np.max(np.abs(g - fd), initial=0.0) / scale)


def check(problem, dims=None, inputs=None, seed: int = 0, tol: float = 1e-6,
          eps: float = 1e-6, module=None) -> CheckResult:
    """Compare the generated gradients of `problem` with finite differences
    at `inputs` ({name: array}; the sizes they bind, and random values in
    each variable's domain for the others)."""
    bound, given = prepare(problem, dims, inputs)
    concrete = sizes(problem, bound)
    rng = np.random.default_rng(seed)
    values = {**draw(problem, concrete, rng), **given}
    if module is None:
        module = load(generate(derive(problem)), problem.output_name)
    try:
        return _compare(problem, module, values, concrete, rng, tol, eps)
    except (ArithmeticError, np.linalg.LinAlgError) as err:  # overflow, a singular matrix
        at = ", ".join(f"{d} = {n}" for d, n in concrete.items())
        raise DomainError(f"{problem.output_name} cannot be evaluated at "
                          f"{at or 'these inputs'}: {err}") from None


def _compare(problem, module, values, concrete, rng, tol, eps) -> CheckResult:
    """The generated gradients against finite differences at `values`."""
    order = list(problem.variables)
    value, cache = module.forward(*(values[n] for n in order))
    if not np.all(np.isfinite(value)):
        raise DomainError(f"{problem.output_name} is not finite at the random inputs; "
                          "pass inputs in its domain")
    dout = None if not problem.output.shape else rng.standard_normal(np.shape(value))
    grads = dict(zip(problem.wrt, module.backward(cache, dout)))

    def scalar(point):
        v = module.forward(*(point[n] for n in order))[0]
        return float(v) if dout is None else float(np.sum(dout * v))

    size = scalar(values)
    errors = {}
    for w in problem.wrt:
        g = np.asarray(grads[w], dtype=np.float64)
        if problem.variables[w].structure:  # symmetric: G = Gᵀ, probed along E_ij + E_ji
            fd = finite_differences(scalar, values, w, eps, symmetric=True)
            errors[w] = max(relative_error(g * (2 - np.eye(len(g))), fd, size),
                            relative_error(g, g.T, size))
        else:
            errors[w] = relative_error(g, finite_differences(scalar, values, w, eps), size)
    return CheckResult(errors, tol, concrete, value)
