"""The inputs of a numerical check: random draws in each variable's domain,
and the user's own arrays, which set the sizes they bind.

A declared domain decides how a variable is drawn: `onehot` rows (one 1 at a
random place, the rest 0), `sign` entries (±1 with equal odds), `positive`
entries (uniform in [0.5, 1.5]); a `symmetric` or `spd` matrix is drawn
symmetric (spd: B Bᵀ/n + I). Otherwise what the problem's functions need
decides (positive under log, |x| < 1 under arcsin, x > 1 under arccosh,
spd under inv), and a standard normal is the default. Given arrays are checked against the
declarations: shape (each dimension name bound once), finiteness, domain and
structure; a mismatch is a `MatcalcError` naming the input.
"""

from __future__ import annotations

import zipfile

import numpy as np

from ..errors import MatcalcError
from ..ir.shapes import fmt


def sample(v, shape: tuple, need, rng) -> np.ndarray | float:
    """A random value of the variable `v` of the concrete `shape`, in its
    declared domain, else in the domain its functions `need`; an integer
    input's `need` is the size of the axis it indexes."""
    kind = "spd" if v.structure == "spd" else need
    kind = "unit" if kind == "above_minus_one" else kind  # log1p(±x) at |x| < 1
    if v.domain == "int":  # indices into an axis of `need` entries
        return rng.integers(need or 1, size=shape)
    if v.domain == "onehot":
        k = shape[-1]
        value = np.eye(k)[rng.integers(k, size=shape[:-1])]
    elif v.domain == "sign":
        value = rng.choice([-1.0, 1.0], size=shape)
    elif kind == "spd" and len(shape) == 2 and shape[0] == shape[1]:
        b = rng.uniform(0.5, 1.5, shape) if v.domain == "positive" else rng.standard_normal(shape)
        value = b @ b.T / shape[0] + np.eye(shape[0])
    elif kind == "above_one":
        value = rng.uniform(1.2, 2.0, shape)
    elif v.domain == "positive":
        value = rng.uniform(0.2, 0.8, shape) if kind == "unit" else rng.uniform(0.5, 1.5, shape)
    elif kind == "positive":
        value = rng.uniform(0.5, 1.5, shape)
    elif kind == "unit":
        value = rng.uniform(-0.8, 0.8, shape)
    else:
        value = rng.standard_normal(shape)
    if v.structure:
        value = np.triu(value) + np.triu(value, 1).T if v.domain == "sign" \
            else (value + value.T) / 2
    return np.asarray(value, dtype=np.float64) if shape else float(value)


def real_array(value) -> tuple[np.ndarray | None, str]:
    """(value as a float64 array, '') or (None, why not): 'complex', or
    'not an array of numbers (...)' (None, text, ragged rows, 10 ** 400)."""
    if value is None:
        return None, "not an array of numbers (None)"
    try:
        if np.iscomplexobj(value):
            return None, "complex"
        return np.asarray(value, dtype=np.float64), ""
    except (TypeError, ValueError, OverflowError) as err:
        why = "too large for a float" if isinstance(err, OverflowError) else \
            "rows of unequal length" if "inhomogeneous" in str(err) else type(value).__name__
        return None, f"not an array of numbers ({why})"


def as_array(name: str, value) -> np.ndarray:
    """A given input as a float64 array (finite), or a MatcalcError naming it."""
    array, why = real_array(value)
    if array is None:
        raise MatcalcError(f"input '{name}' is {why}")
    if not np.all(np.isfinite(array)):
        raise MatcalcError(f"input '{name}' has entries that are not finite (nan or inf)")
    return array


def bound_sizes(problem, given: dict[str, np.ndarray], dims: dict | None) -> dict[str, int]:
    """The sizes the given arrays bind, by dimension name; each name bound
    once (by the arrays and by `dims`), integer dimensions matched exactly."""
    bound: dict[str, tuple[int, str]] = {n: (s, "dims= (--dims)") for n, s in
                                      (dims or {}).items()}
    products: list = []
    for name, array in given.items():
        v = problem.variables[name]
        if array.ndim != len(v.shape):
            raise _shape_error(name, v, array, bound, problem.dims)
        for d, n in zip(v.shape, array.shape):
            if d.is_Integer:
                if int(d) != n:
                    raise _shape_error(name, v, array, bound, problem.dims)
                continue
            if not d.is_Symbol:  # a product of dimensions (D = 4 * E), once the others are
                products.append((name, array, d, n))
                continue
            size, source = bound.setdefault(str(d), (n, f"input '{name}'"))
            if size != n:
                raise MatcalcError(f"input '{name}' of shape {array.shape} has {d} = {n}, "
                                   f"but {source} gives {d} = {size}")
    for name, array, d, n in products:
        _bind_factor(name, array, d, n, bound)
    return {n: s for n, (s, _) in bound.items()}


def _bind_factor(name: str, array, d, n: int, bound: dict) -> None:
    """The size of the one factor of the product axis d that no input gives
    (E = n / 4 for D = 4 * E), or a MatcalcError where n is not d."""
    known = d.subs({s: bound[str(s)][0] for s in d.free_symbols if str(s) in bound})
    free = sorted(known.free_symbols, key=str)
    if len(free) > 1:
        return  # the check's own sizes and the module's checks settle it
    size = n / known.subs(free[0], 1) if free else None
    if (free and not (size.is_Integer and size > 0)) or (not free and known != n):
        want = f"a multiple of {known.subs(free[0], 1)}" if free else str(known)
        raise MatcalcError(f"input '{name}' of shape {array.shape} has an axis {d} "
                           f"of size {n}, which is not {want}")
    if free:
        bound[str(free[0])] = (int(size), f"input '{name}'")


def _shape_error(name: str, v, array: np.ndarray, bound: dict, dims: dict) -> MatcalcError:
    """`input 'y': expected shape (N,) = (6,), got (6, 1)` (the sizes bound
    so far)."""
    def text(shape):
        return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"

    sizes = {dims[n]: s for n, (s, _) in bound.items() if n in dims}
    declared, known = text(v.shape), text([d.subs(sizes) for d in v.shape])
    where = f" = {known}" if known != declared else ""
    return MatcalcError(f"input '{name}': expected shape {declared}{where}, got {array.shape}")


def check_domain(name: str, v, array: np.ndarray) -> None:
    """A MatcalcError naming the input when a given value is outside the
    declared domain or structure."""
    why = ""
    if v.domain == "sign" and not np.all(np.abs(array) == 1):
        why = "entries that are not ±1"
    elif v.domain == "onehot" and not (np.all((array == 0) | (array == 1))
                                       and np.all(array.sum(axis=-1) == 1)):
        why = "a row that is not one 1 and the rest 0"
    elif v.domain == "positive" and not np.all(array > 0):
        why = "entries that are not positive"
    elif v.structure and not np.allclose(array, array.T, rtol=1e-12, atol=0):
        why = "a matrix that is not symmetric"
    elif v.structure == "spd" and not _positive_definite(array):
        why = "a matrix that is not positive definite"
    if why:
        declared = " ".join(w for w in (fmt(v.shape), v.structure, v.domain) if w)
        raise MatcalcError(f"input '{name}' is declared {declared} but has {why}")


def _positive_definite(array: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(array)
    except np.linalg.LinAlgError:
        return False
    return True


def given_inputs(problem, inputs: dict | None) -> dict[str, np.ndarray]:
    """The given inputs as float64 arrays, each a declared variable."""
    if inputs is None:
        return {}
    if not hasattr(inputs, "items"):
        raise MatcalcError(f"inputs must be a dict {{name: array}}, got {type(inputs).__name__}")
    given = {}
    for name, value in inputs.items():
        if name not in problem.variables:
            raise MatcalcError(f"input '{name}' is not a variable of the problem "
                               f"(its variables: {', '.join(problem.variables)})")
        v = problem.variables[name]
        given[name] = as_indices(name, v, value) if v.domain == "int" else as_array(name, value)
    return given


def as_indices(name: str, v, value) -> np.ndarray:
    """A given integer input as an array of integers, or a MatcalcError."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise MatcalcError(f"input '{name}' is declared {fmt(v.shape)} int (indices) but "
                           f"holds {array.dtype} entries; pass an integer array")
    return array


def prepare(problem, dims: dict | None, inputs: dict | None) -> tuple[dict, dict]:
    """(sizes, given values): `dims` and the sizes the given inputs bind
    (they must agree), and the given inputs checked against the declarations
    (scalars as floats)."""
    given = given_inputs(problem, inputs)
    bound = bound_sizes(problem, given, dims)
    for name, array in given.items():
        check_domain(name, problem.variables[name], array)
    return bound, {n: a if a.ndim else float(a) for n, a in given.items()}


def load(path: str) -> dict[str, np.ndarray]:
    """The arrays of a `.npz` file (as `np.savez` writes), by name."""
    not_npz = MatcalcError(f"--inputs: {path} is not a readable .npz file of arrays "
                           "(write one with np.savez(path, X=X, y=y))")
    try:
        data = np.load(path, allow_pickle=False)
    except OSError as err:
        if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise MatcalcError(f"--inputs: cannot read {path}: {err.strerror}") from None
        raise not_npz from None
    except (ValueError, EOFError, zipfile.BadZipFile):
        raise not_npz from None
    if isinstance(data, np.ndarray):
        raise MatcalcError(f"--inputs: {path} holds one array; save the inputs by name "
                           "with np.savez(path, X=X, y=y)")
    with data:
        try:
            return {name: data[name] for name in data.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):
            raise not_npz from None
