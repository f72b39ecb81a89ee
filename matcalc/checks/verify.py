"""Numerical check: derived gradients against central finite differences.

Inputs are drawn at random in each variable's declared domain (onehot, sign,
positive; see `matcalc.inputs`), else in each function's domain (positive
under log, sqrt and fractional powers; symmetric positive definite under
inv, det and logdet), or given by the user; the generated `backward` is
compared with (f(x + h e_i) - f(x - h e_i)) / 2h for every entry of every
variable, and the generated value with the text evaluated as written by
plain NumPy (`reference.py`), so a rewrite that changes the function is
caught too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import sympy

from ..targets.bounds import least_sizes  # noqa: F401  (matcalc.checks.verify.least_sizes)
from ..targets.numpy import generate, load
from ..errors import DomainError, MatcalcError
from ..targets.evaluation import evaluate  # noqa: F401  (matcalc.verify.evaluate, as before)
from ..ir.expr import Apply, Const, Var, postorder
from ..ad.gradient import derive
from .inputs import prepare, sample
from ..ops import OPS
from ..ops.indexing import indexed_sizes
from .reference import value_error

DEFAULT_SIZES = (3, 4, 5, 6, 7, 8, 9, 10)
MAX_ENTRIES = 100_000  # two function evaluations per entry


@dataclass(frozen=True)
class CheckResult:
    """Max relative error of each gradient, and whether all are within `tol`;
    `value_error`: the generated value against the text evaluated as written
    with plain NumPy (nan where that overflows, None without problem text)."""

    errors: dict[str, float]
    tol: float
    dims: dict[str, int]
    value: float | np.ndarray
    value_error: float | None = None
    raw: dict[str, float] | None = None        # before the differences' noise is set aside
    uncertain: dict[str, float] | None = None  # the largest noise so set aside
    noise: float = 0.0                         # the rounding noise of f's values near the inputs

    @property
    def value_ok(self) -> bool:
        return self.value_error is None or not self.value_error > self.tol

    @property
    def ok(self) -> bool:
        return self.value_ok and all(e <= self.tol for e in self.errors.values())

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        lines = [f"finite-difference check ({dims}; tolerance {self.tol:g})" if dims
                 else f"finite-difference check (tolerance {self.tol:g})"]
        width = max(len(n) for n in self.errors) if self.errors else 0
        for name, err in self.errors.items():
            verdict = "ok" if err <= self.tol else "MISMATCH"
            raw = (self.raw or {}).get(name, err)
            noisy = "" if raw <= self.tol else (
                f" beyond finite-difference noise (raw {raw:.2e}, differences uncertain by "
                f"up to {(self.uncertain or {}).get(name, 0.0):.1e}; f's rounding noise "
                f"{self.noise:.1e})")
            lines.append(f"  d{name:<{width}}  max rel. error {err:.2e}{noisy}  {verdict}")
        label = "value".ljust(width + 1)
        if self.value_error is not None and np.isnan(self.value_error):
            lines.append(f"  {label}  not compared: plain NumPy overflows on the text here")
        elif self.value_error is not None:
            lines.append(f"  {label}  max rel. error {self.value_error:.2e} against the "
                         "text in plain NumPy  " + ("ok" if self.value_ok else "MISMATCH"))
        return "\n".join(lines)


def sizes(problem, dims: dict[str, int] | None = None) -> dict[str, int]:
    """Concrete sizes: the given ones, else small distinct defaults."""
    dims = dict(dims or {})
    for name in dims:
        if name not in problem.dims:
            raise MatcalcError(_not_a_dimension(problem, name))
        if not isinstance(dims[name], (int, np.integer)) or isinstance(dims[name], bool) \
                or dims[name] < 1:
            raise MatcalcError(f"dimension {name} must be a positive integer, "
                               f"got {dims[name]!r}")
    free = (s for s in DEFAULT_SIZES if s not in dims.values())
    least = least_sizes(problem)
    for name in problem.dims:
        if name in dims and dims[name] < least.get(name, 1):
            raise MatcalcError(f"dimension {name} must be at least {least[name]}: a fixed "
                               f"index of the problem needs {least[name]} entries")
        if name not in dims:
            dims[name] = max(next(free, 3), least.get(name, 1))
    concrete = {name: int(dims[name]) for name in problem.dims}
    entries = sum(int(sympy.Mul(*v.shape).subs({problem.dims[k]: n for k, n in concrete.items()}))
                  for v in problem.variables.values())
    if entries > MAX_ENTRIES:
        raise MatcalcError(f"{entries} input entries are too many for a finite-difference "
                           f"check (at most {MAX_ENTRIES}); give smaller sizes "
                           f"by {DIMS}")
    return concrete


DIMS = "dims= (--dims)"  # the option, as the library and the CLI name it


def _not_a_dimension(problem, name: str) -> str:
    """Why `dims` cannot give `name`: a size the problem fixes (H = 8,
    D = H * E, at its line), or no dimension at all."""
    if name in problem.written and name in problem.intermediates and \
            not problem.intermediates[name].shape:
        place = re.search(rf"(?:^|[;\n])[ \t]*{re.escape(name)}[ \t]*=(?!=)",
                          problem.source or "")
        line = f" by line {problem.source.count(chr(10), 0, place.end()) + 1}" if place else ""
        return (f"{DIMS} gives {name}, which is fixed{line} ({name} = "
                f"{problem.written[name]}): give the problem's dimensions "
                f"({', '.join(problem.dims)})")
    return (f"{DIMS} names '{name}', which is not a dimension of the problem (its "
            f"dimensions: {', '.join(problem.dims) or 'none'})")


def domains(problem) -> dict[str, str]:
    """'positive', 'unit' (|x| < 1), 'above_one' (x > 1), 'above_minus_one'
    (x > -1: log1p's, drawn as 'unit', so that ±x, 1 - x and x / 2 are in
    it too) or 'spd' for each
    variable some function restricts (an spd need wins over the others)."""
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
        elif domain in ("positive", "unit", "above_one", "above_minus_one"):
            for leaf in postorder([arg]):
                if isinstance(leaf, Var) and need.get(leaf.name) != "spd":
                    need[leaf.name] = domain
    return need


def index_ranges(problem, dims: dict[str, int]) -> dict[str, int]:
    """For each integer input, the size of the axis it indexes (the least,
    where it indexes several): random indices are drawn below it."""
    at = {problem.dims[k]: n for k, n in dims.items()}
    return {name: min(int(sympy.sympify(rows).subs(at)) for rows in sizes)
            for name, sizes in indexed_sizes([problem.output]).items()}


def _in_range(given: dict, ranges: dict[str, int]) -> None:
    """Refuse a given integer input with an index outside the axis it indexes."""
    for name, n in ranges.items():
        if name in given and np.size(given[name]) and not (
                -n <= np.min(given[name]) and np.max(given[name]) < n):
            raise MatcalcError(f"input '{name}' has indices outside the {n} entries of the "
                               f"axis it indexes (from {-n} to {n - 1})")


DOMAIN_WORDS = {"positive": "x > 0", "unit": "|x| < 1", "above_one": "x > 1",
                "above_minus_one": "x > -1",
                "spd": "a symmetric positive definite matrix"}


def _needs(problem) -> str:
    """' (arccosh: x > 1; log: x > 0)': the domains its functions need."""
    needs = {n.op: DOMAIN_WORDS[OPS[n.op].domain] for n in postorder([problem.output])
             if isinstance(n, Apply) and OPS[n.op].domain in DOMAIN_WORDS}
    listed = "; ".join(f"{op}: {words}" for op, words in sorted(needs.items()))
    return f" ({listed})" if listed else ""


def draw(problem, dims: dict[str, int], rng) -> dict[str, np.ndarray]:
    """Random inputs of the declared shapes, in each variable's declared
    domain, else in the domain its functions need (see `matcalc.inputs`)."""
    need = {**domains(problem), **index_ranges(problem, dims)}
    out = {}
    for name, v in problem.variables.items():
        shape = tuple(int(d.subs({problem.dims[k]: n for k, n in dims.items()}))
                      for d in v.shape)
        out[name] = sample(v, shape, need.get(name), rng)
    return out


def finite_differences(f, inputs: dict, name: str, eps: float,
                       symmetric: bool = False) -> np.ndarray:
    """Central differences of the scalar function f(inputs) by inputs[name];
    with `symmetric`, along E_ij + E_ji (so entry (i, j) estimates
    G_ij + G_ji = 2 G_ij off the diagonal for the symmetric gradient G)."""
    x = np.array(inputs[name], dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        grad[index] = central(f, inputs, name, index, _step(x, index, eps), symmetric)
    return grad


def _step(x: np.ndarray, index: tuple, eps: float) -> float:
    return eps * max(1.0, abs(x[index]))


def central(f, inputs: dict, name: str, index: tuple, h: float,
            symmetric: bool = False) -> float:
    """(f(x + h e) − f(x − h e)) / 2h for the unit e at `index` of inputs[name]."""
    up, down = _pair(f, inputs, name, index, h, symmetric)
    return (up - down) / (2 * h)


def _pair(f, inputs: dict, name: str, index: tuple, h: float, symmetric: bool) -> tuple:
    """f(x + h e) and f(x − h e)."""
    x = np.array(inputs[name], dtype=np.float64)
    step = np.zeros_like(x)
    step[index] = h
    if symmetric:
        step[index[::-1]] = h

    def at(point):
        return f({**inputs, name: point if point.ndim else float(point)})
    return at(x + step), at(x - step)


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
    return float(np.max(np.abs(g - fd), initial=0.0) / _scale(g, fd, value))


def _scale(g, fd, value: float) -> float:
    return floored_scale(g, fd, FLOOR * max(1.0, abs(value)))


def floored_scale(g, fd, floor: float) -> float:
    """max(‖g‖∞, ‖fd‖∞, floor): what an error is relative to."""
    return max(float(np.max(np.abs(fd), initial=0.0)), float(np.max(np.abs(g), initial=0.0)),
               floor)


# The rounding noise of f is measured, not assumed: f at NOISE_POINTS points
# x + j h p (p a random sign per entry, h the differences' step) differs
# from a smooth function by its rounding errors alone once its k-th
# differences remove the smooth part (Moré and Wild, "Estimating computational
# noise", 2011): σ² ≈ γ_k mean((Δᵏf)²), γ_k = (k!)² / (2k)!, for k = 4..6.
NOISE_POINTS = 8
NOISE_ORDERS = (4, 5, 6)
# A central difference with step h carries noise of standard deviation
# σ / (√2 h); a difference from the gradient within NOISE_SIGMAS of that is
# noise, not error.
NOISE_SIGMAS = 6.0


def rounding_noise(f, inputs: dict, names, eps: float) -> float:
    """σ, the standard deviation of the rounding errors in f's values near
    `inputs` (at least one unit in the last place of f)."""
    rng = np.random.default_rng(0)
    direction = {n: rng.choice((-1.0, 1.0), np.shape(inputs[n])) * eps
                 * np.maximum(1.0, np.abs(inputs[n])) for n in names}

    def at(j):
        moved = {n: np.asarray(inputs[n] + j * d) for n, d in direction.items()}
        return f({**inputs, **{n: v if v.ndim else float(v) for n, v in moved.items()}})

    values = np.array([at(j) for j in range(NOISE_POINTS)])
    sigma = max(np.sqrt(math.factorial(k) ** 2 / math.factorial(2 * k)
                        * np.mean(np.diff(values, k) ** 2)) for k in NOISE_ORDERS)
    return max(float(sigma), float(np.finfo(np.float64).eps * np.max(np.abs(values))))


# Where a difference disagrees with the gradient, the entry is probed again
# at these steps (times max(1, |x|)), from the shortest.
STEPS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def _extended(module, order: list, dout, values: dict):
    """The scalar function in NumPy's extended precision (long double: a
    64-bit mantissa on x86, so its rounding noise is 2¹¹ times smaller), for
    probing entries where float64 differences are noisy; None where long
    double is no wider than float64 or the function refuses it (linalg)."""
    if np.finfo(np.longdouble).eps > np.finfo(np.float64).eps / 16:
        return None

    def f(point):
        v = module.forward(*(np.asarray(point[n], dtype=np.longdouble) for n in order))[0]
        return np.sum(v) if dout is None else np.sum(dout * v)
    try:
        with np.errstate(all="ignore"):
            value = f(values)
    except (TypeError, ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None
    return f if np.asarray(value).dtype == np.longdouble and np.isfinite(value) else None


def noise_aware_error(f, inputs: dict, name: str, g, fd, value: float, sigma: float,
                      tol: float, symmetric: bool = False) -> tuple:
    """(error, raw error, uncertainty) of g against the differences fd, all
    relative to the scale; the raw error is max |g − fd|. An entry off by
    more than tol is probed again (`_best_difference`), and its error is what
    lies beyond the uncertainty of the best difference."""
    x = np.array(inputs[name], dtype=np.float64)
    g, fd = np.asarray(g, dtype=np.float64), np.asarray(fd, dtype=np.float64)
    scale = _scale(g, fd, value)
    raw = float(np.max(np.abs(g - fd), initial=0.0) / scale)
    worst = uncertainty = 0.0
    for index in np.ndindex(x.shape):
        if abs(g[index] - fd[index]) <= tol * scale:
            continue
        size = max(1.0, abs(x[index]))
        d, u = _best_difference(
            lambda s: _pair(f, inputs, name, index, s * size, symmetric), size, sigma)
        excess = max(abs(g[index] - d) - u, 0.0)
        worst = max(worst, excess)
        if excess <= tol * scale:
            uncertainty = max(uncertainty, u)
    return float(worst / scale), raw, float(uncertainty / scale)


def _best_difference(probe, size: float, sigma: float) -> tuple:
    """The central difference D(s) over STEPS s with the least uncertainty
    u(s) = 2 (NOISE_SIGMAS σ / (√2 s) + max |D(s) − D(s′)|) over the two
    nearest steps s′ (truncation, rounding noise and quantisation alike make
    nearby steps disagree; two of them, and the 2, allow for this estimate
    of the error being an estimate), and that u. A step where f(x + s)
    equals f(x − s) exactly sees f flat at that resolution (a quantised f,
    as log(1 − R) is where R is within a few units of the last place of 1)
    and is left out. A smooth f has a tiny u at short steps, so a wrong
    gradient stays wrong; a noisy f has no step without noise, and u says
    how much."""
    found = []
    for step in STEPS:
        up, down = probe(step)
        if up != down:
            s = step * size
            found.append(((up - down) / (2 * s), NOISE_SIGMAS * sigma / (np.sqrt(2) * s)))
    if not found:   # flat at every step: D = 0 up to the noise at the longest
        return 0.0, NOISE_SIGMAS * sigma / (np.sqrt(2) * STEPS[-1] * size)
    best = (found[0][0], float("inf"))
    for i, (d, n) in enumerate(found):
        start = max(0, min(i - 1, len(found) - 3))
        u = 2 * (n + max(abs(d - e) for e, _ in found[start:start + 3]))
        if u < best[1]:
            best = (d, u)
    return best


def check(problem, dims=None, inputs=None, seed: int = 0, tol: float = 1e-6,
          eps: float = 1e-6, module=None) -> CheckResult:
    """Compare the generated gradients of `problem` with finite differences
    at `inputs` ({name: array}; the sizes they bind, and random values in
    each variable's domain for the others). Where the function cannot be
    evaluated at the default sizes (logdet(Xᵀ A X) of a wide X), the
    sizes left free are tried once more in the reverse order."""
    check_settings(dims, seed, tol, eps)
    bound, given = prepare(problem, dims, inputs)
    if module is None:
        module = load(generate(derive(problem)), problem.output_name)
    concrete = sizes(problem, bound)
    try:
        return _check_at(problem, concrete, given, module, seed, tol, eps)
    except DomainError as err:
        free = [d for d in concrete if d not in bound]
        if len(free) < 2:
            raise
        try:
            other = sizes(problem, {**bound, **dict(zip(free, [concrete[d] for d in free][::-1]))})
        except MatcalcError:  # reversed, a size falls below what a fixed index needs
            raise err from None
        try:
            return _check_at(problem, other, given, module, seed, tol, eps)
        except DomainError:
            raise _at_sizes(problem, concrete, given) from None


def _sizes_text(concrete: dict) -> str:
    """'N = 3, D = 4'."""
    return ", ".join(f"{d} = {n}" for d, n in concrete.items())


def _at_sizes(problem, concrete, given) -> DomainError:
    at = _sizes_text(concrete)
    drawn = "the inputs given and random" if given else "random inputs"
    return DomainError(f"{problem.output_name} cannot be evaluated at {at} (nor with those "
                       f"sizes reversed) with {drawn} in its domain{_needs(problem)}; "
                       "give sizes (--dims, dims=) or inputs where it is defined")


def _check_at(problem, concrete, given, module, seed, tol, eps) -> CheckResult:
    """The check at the sizes `concrete`, the inputs not given drawn at random."""
    _in_range(given, index_ranges(problem, concrete))
    rng = np.random.default_rng(seed)
    values = {**draw(problem, concrete, rng), **given}
    try:
        with np.errstate(all="ignore"):  # a non-finite value or gradient is reported
            return _compare(problem, module, values, concrete, rng, tol, eps)
    except (ArithmeticError, np.linalg.LinAlgError) as err:  # overflow, a singular matrix
        at = _sizes_text(concrete)
        raise DomainError(f"{problem.output_name} cannot be evaluated at "
                          f"{at or 'these inputs'}: {err}") from None
    except MemoryError:  # an array in constants (ones(10 ** 12)) no machine holds
        raise MatcalcError(f"{problem.output_name} needs more memory than this machine has "
                           f"at {_sizes_text(concrete) or 'these inputs'}; give smaller "
                           f"sizes ({DIMS})") from None


def check_settings(dims, seed, tol, eps: float = 1e-6) -> None:
    """Refuse settings that would make a check meaningless or raise inside NumPy."""
    if dims is not None and not isinstance(dims, dict):
        raise MatcalcError(f"dims is a dict of sizes such as {{'N': 5}}, got "
                           f"{type(dims).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MatcalcError(f"seed must be a non-negative integer, got {seed!r}")
    for what, number in (("tol", tol), ("eps", eps)):
        if isinstance(number, bool) or not isinstance(number, (int, float, np.floating)) \
                or not 0 < number < np.inf:
            raise MatcalcError(f"{what} must be a positive finite number, got {number!r}")


def _compare(problem, module, values, concrete, rng, tol, eps) -> CheckResult:
    """The generated gradients against finite differences at `values`."""
    order = list(problem.variables)
    value, cache = module.forward(*(values[n] for n in order))
    if not np.all(np.isfinite(value)):
        at = _sizes_text(concrete)
        raise DomainError(f"{problem.output_name} is not finite at these inputs"
                          f"{' (' + at + ')' if at else ''}; give inputs in its domain"
                          f"{_needs(problem)} or other sizes (--dims, dims=)")
    dout = None if not problem.output.shape else rng.standard_normal(np.shape(value))
    grads = dict(zip(problem.wrt, module.backward(cache, dout)))
    for w, g in grads.items():
        if not np.all(np.isfinite(g)):
            raise DomainError(f"the gradient by {w} is not finite at these inputs: "
                              f"{problem.output_name} is not differentiable there (as "
                              "norm(x) at x = 0); pass inputs where it is")

    def scalar(point):
        v = module.forward(*(point[n] for n in order))[0]
        return float(v) if dout is None else float(np.sum(dout * v))

    size = scalar(values)
    plain = value_error(value, problem, values, concrete)
    sigma = rounding_noise(scalar, values, problem.wrt, eps)
    extended = _extended(module, order, dout, values)
    probe, probe_sigma = (scalar, sigma) if extended is None else \
        (extended, rounding_noise(extended, values, problem.wrt, eps))
    errors, raw, uncertain = {}, {}, {}
    for w in problem.wrt:
        g = np.asarray(grads[w], dtype=np.float64)
        symmetric = bool(problem.variables[w].structure)
        if symmetric:  # G = Gᵀ, probed along E_ij + E_ji
            g = g * (2 - np.eye(len(g)))
        fd = finite_differences(scalar, values, w, eps, symmetric=symmetric)
        errors[w], raw[w], uncertain[w] = noise_aware_error(
            probe, values, w, g, fd, size, probe_sigma, tol, symmetric)
        if symmetric:
            asymmetry = relative_error(grads[w], np.transpose(grads[w]), size)
            errors[w], raw[w] = max(errors[w], asymmetry), max(raw[w], asymmetry)
    if not np.isfinite([sigma, *errors.values(), *uncertain.values()]).all():
        at = _sizes_text(concrete)
        raise DomainError(f"{problem.output_name} is not finite near these inputs"
                          f"{' (' + at + ')' if at else ''}, so finite differences cannot "
                          f"judge its gradients (a matrix singular there); give inputs in "
                          f"its domain{_needs(problem)} or other sizes (--dims, dims=)")
    return CheckResult(errors, tol, concrete, value, plain, raw, uncertain, sigma)
