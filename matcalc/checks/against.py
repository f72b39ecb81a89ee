"""Check a hand-written backward function against matcalc's gradients.

    matcalc check examples/seed004.mc --dims N=5,O=5 \\
        --against examples/seed004_handwritten.py:backward

The hand-written function takes the problem's inputs as keyword arguments,
named as declared, and returns the gradients as a dict:

    def backward(X, y, W1, b1, W2, b2):
        ...
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

A key is a variable's name or `d` + its name (`"dW1"`). The function may
also return `(value, gradients)`, as a generated module's `value_and_grad`
does; the value is then checked too. For an array-valued function `S` (the
affine layer) it also gets the upstream gradient `∂L/∂S` as the keyword
argument `dS` (the name `matcalc grad` prints), and returns the
vector-Jacobian products. For a variable declared `symmetric` or `spd` the
symmetric part of the returned gradient is compared (so the unconstrained
gradient and the symmetric one both pass).

Inputs are drawn as `matcalc check` draws them (`verify.sizes`,
`verify.draw`), in each variable's declared domain, except those given
(`inputs=`, `--inputs data.npz`), which set the sizes they bind; matcalc's gradients come from the
generated NumPy module.
Every gradient in `wrt` is compared entry by entry with
`verify.relative_error`; a missing gradient, a wrong shape or a non-finite
entry is an error of its own.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..targets.numpy import generate, load
from ..errors import MatcalcError
from ..ad.gradient import derive
from .inputs import prepare, real_array
from ..ir.shapes import fmt
from .verify import check_settings, draw, floored_scale, relative_error, sizes


@dataclass(frozen=True)
class AgainstResult:
    """The verdict on each gradient of a hand-written function.

    `errors[name]` is the max relative error of the gradient by `name` (inf
    where it is missing, of the wrong shape or not finite); `notes[name]`
    says what is wrong in words ('shape (H,) but expected H x O').
    """

    errors: dict[str, float]
    notes: dict[str, str]
    tol: float
    dims: dict[str, int]
    function: str = "the function"
    value_error: float | None = None
    unchecked: tuple[str, ...] = field(default=())

    @property
    def wrong(self) -> list[str]:
        """The variables whose gradients are wrong, in wrt order."""
        return [name for name, err in self.errors.items() if not err <= self.tol]

    @property
    def ok(self) -> bool:
        value_ok = self.value_error is None or self.value_error <= self.tol
        return value_ok and not self.wrong

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        dims = ", ".join(f"{k}={v}" for k, v in self.dims.items())
        where = f"{dims}; tolerance {self.tol:g}" if dims else f"tolerance {self.tol:g}"
        lines = [f"{self.function} against matcalc's gradients ({where})"]
        width = max((len(n) for n in self.errors), default=0)
        if self.value_error is not None:
            width = max(width, 4)
            verdict = "ok" if self.value_error <= self.tol else "WRONG"
            lines.append(f"  {'value':<{width + 1}}  rel. error {self.value_error:.2e}  {verdict}")
        for name, err in self.errors.items():
            if name in self.notes:
                lines.append(f"  d{name:<{width}}  {self.notes[name]}  WRONG")
            else:
                verdict = "ok" if err <= self.tol else "WRONG"
                lines.append(f"  d{name:<{width}}  max rel. error {err:.2e}  {verdict}")
        if self.unchecked:
            lines.append("  not checked (not in wrt): "
                         + ", ".join("d" + n for n in self.unchecked))
        wrong = self.wrong
        if wrong:
            lines.append("wrong: " + ", ".join("d" + n for n in wrong))
        elif not self.ok:
            lines.append("wrong: the value")
        return "\n".join(lines)


# ------------------------------------------------------------------ loading ---

@contextlib.contextmanager
def _on_path(folder: str):
    """`folder` first on sys.path while importing (removed afterwards)."""
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


AGAINST = "against= (--against)"  # the option, as the library and the CLI name it


def _import_failed(what: str, err: BaseException) -> MatcalcError:
    frames = traceback.extract_tb(err.__traceback__)
    place = ""
    if isinstance(err, SyntaxError) and err.filename:
        place = f" ({err.filename}:{err.lineno})"
    elif frames:
        place = f" ({frames[-1].filename}:{frames[-1].lineno})"
    return MatcalcError(f"importing {what} failed: {type(err).__name__}: {err}{place}")


def _load_file(path: str):
    file = Path(path)
    if not file.is_file():
        raise MatcalcError(f"{AGAINST}: no such file: {path}")
    name = "matcalc_against_" + "".join(c if c.isalnum() else "_" for c in file.stem)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise MatcalcError(f"{AGAINST}: cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        with _on_path(str(file.resolve().parent)):
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:  # sys.exit() at import too
        raise _import_failed(path, err) from None
    finally:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
    return module


def _load_module(name: str):
    try:
        with _on_path(os.getcwd()):
            return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and (name == err.name or name.startswith(err.name + ".")):
            raise MatcalcError(f"{AGAINST}: no module named '{name}'") from None
        raise _import_failed(f"module '{name}'", err) from None
    except (Exception, SystemExit) as err:  # sys.exit() at import too
        raise _import_failed(f"module '{name}'", err) from None


def load_function(spec: str) -> Callable:
    """The function named by `module:function` or `path/to/file.py:function`
    (a dotted `function` looks up attributes: `mod:Net.backward`)."""
    target, colon, attr = spec.rpartition(":")
    if not colon or not target or not attr:
        raise MatcalcError(f"{AGAINST} expects MODULE:FUNCTION or FILE.py:FUNCTION, "
                           f"got '{spec}'")
    is_file = target.endswith(".py") or "/" in target or os.sep in target
    module = _load_file(target) if is_file else _load_module(target)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise MatcalcError(f"{AGAINST}: {target} has no function '{attr}'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise MatcalcError(f"{AGAINST}: {target}:{attr} is a {type(obj).__name__}, "
                           "not a function")
    return obj


# ----------------------------------------------------------------- checking ---

def _label(function: Callable, spec: str | None) -> str:
    if spec:
        return spec
    return getattr(function, "__qualname__", None) or repr(function)


def _short(filename: str) -> str:
    """A file name relative to the working directory when it lies under it."""
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive
        return filename
    return filename if relative.startswith("..") else relative


def _raised(label: str, err: BaseException, function: Callable, dims: dict) -> MatcalcError:
    """The function's exception as one message, with the line of the
    function's own code that raised it."""
    frames = traceback.extract_tb(err.__traceback__)[1:]  # drop the caller's frame
    code = getattr(function, "__code__", None)
    own = [f for f in frames if code is not None and f.filename == code.co_filename]
    frame = (own or frames or [None])[-1]
    where = ""
    if frame is not None:
        line = (frame.line or "").strip()
        where = f" at {_short(frame.filename)}:{frame.lineno}" + (f" `{line}`" if line else "")
    sizes_text = ", ".join(f"{k}={v}" for k, v in dims.items())
    message = f"{label} raised {type(err).__name__}: {err}{where}"
    if sizes_text:
        message += f" (sizes {sizes_text})"
    return MatcalcError(message)


def _keys(returned: dict, problem, label: str) -> dict[str, object]:
    """The returned gradients by variable name (`W1` or `dW1` accepted)."""
    out: dict[str, object] = {}
    for key, value in returned.items():
        if not isinstance(key, str):
            raise MatcalcError(f"{label} returned a dict with the key {key!r}; "
                               "expected variable names such as "
                               f"{', '.join(repr(n) for n in problem.wrt)}")
        name = key
        if key not in problem.variables and key.startswith("d") and key[1:] in problem.variables:
            name = key[1:]
        if name not in problem.variables:
            raise MatcalcError(f"{label} returned a gradient named '{key}', which is not a "
                               f"variable of the problem (its variables: "
                               f"{', '.join(problem.variables)})")
        if name in out:
            raise MatcalcError(f"{label} returned two gradients for {name}")
        out[name] = value
    return out


def _shape_text(shape: tuple, dims: dict[str, int]) -> str:
    """A concrete shape in dimension names where the size names one: (H,)."""
    names = []
    for n in shape:
        match = [d for d, v in dims.items() if v == n]
        names.append(match[0] if len(match) == 1 else str(n))
    return "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"


def _function(function) -> tuple[Callable, str]:
    """The function to check (loaded where given as 'module:function') and its label."""
    spec = function if isinstance(function, str) else None
    if spec is not None:
        function = load_function(spec)
    if not callable(function):
        raise MatcalcError(f"expected a function or 'module:function', got "
                           f"{type(function).__name__}")
    return function, _label(function, spec)


def _matcalc(problem, values: dict, rng) -> tuple:
    """matcalc's value and gradients at `values` (by the generated module),
    the keyword arguments for the function, and the size errors are relative to.
    An array-valued function gets a random upstream gradient dS."""
    gradient = derive(problem)
    module = load(generate(gradient), problem.output_name)
    order = list(problem.variables)
    value, cache = module.forward(*(values[n] for n in order))
    dout = None
    kwargs = {n: np.array(values[n]) if np.ndim(values[n]) else values[n] for n in order}
    if problem.output.shape:
        dout = rng.standard_normal(np.shape(value))
        kwargs[gradient.seed.name] = dout.copy()
    expected = dict(zip(problem.wrt, module.backward(cache, dout)))
    size = float(value) if dout is None else float(np.sum(dout * value))
    noise = _rounding_change(problem, module, values, dout, expected)
    return value, expected, kwargs, size, noise


# Two correct float64 computations of a gradient differ by rounding, of the
# order of what rounding does to the gradient: measured by computing it once
# more in float32 (the same branches at every tie and kink, where moving the
# inputs would change them) and scaling the difference by float64's epsilon
# over float32's (2⁻²⁹). A gradient is compared with at least NOISE_MARGIN
# times that over tol as its scale, so a difference up to NOISE_MARGIN times
# it passes where the gradient is 0, and a wrong gradient is never hidden
# behind another quantity's size.
NOISE_MARGIN = 100.0
EPSILON_RATIO = 2.0 ** -29


def _rounding_change(problem, module, values: dict, dout, expected: dict) -> dict:
    """For each gradient, its float64 rounding scale (∞-norm): its change
    when computed in float32, times 2⁻²⁹; 0 where float32 overflows."""
    order = list(problem.variables)
    single = {n: np.asarray(x, dtype=np.float32)
              if np.issubdtype(np.asarray(x).dtype, np.floating) else x
              for n, x in values.items()}
    with np.errstate(all="ignore"):
        _, cache = module.forward(*(single[n] for n in order))
        grads = module.backward(cache, None if dout is None else dout.astype(np.float32))
    change = {}
    for w, g in zip(problem.wrt, grads):
        diff = np.abs(np.asarray(g, dtype=np.float64) - expected[w])
        change[w] = float(np.max(diff, initial=0.0)) * EPSILON_RATIO \
            if np.all(np.isfinite(diff)) else 0.0
    return change


def _returned(function: Callable, kwargs: dict, problem, label: str, concrete: dict) -> tuple:
    """The function's value (None where it returns only gradients) and its
    gradients by variable name."""
    try:
        returned = function(**kwargs)
    except (Exception, SystemExit) as err:  # the user's code: any failure, sys.exit() too
        raise _raised(label, err, function, concrete) from None
    their_value = None
    if isinstance(returned, tuple) and len(returned) == 2 and isinstance(returned[1], dict):
        their_value, returned = returned
    if not isinstance(returned, dict):
        raise MatcalcError(f"{label} returned a {type(returned).__name__}; expected a dict "
                           "{name: gradient} (or a pair (value, dict))")
    return their_value, _keys(returned, problem, label)


def _value_error(their_value, value, size: float) -> float | None:
    """The relative error of the returned value (inf where it is not finite numbers)."""
    if their_value is None:
        return None
    try:
        theirs = np.asarray(their_value, dtype=np.float64)
    except (TypeError, ValueError):
        return float("inf")
    return relative_error(theirs, value, size) if np.all(np.isfinite(theirs)) else float("inf")


def _compare(problem, grads: dict, expected: dict, floors: dict,
             concrete: dict) -> tuple[dict[str, float], dict[str, str]]:
    """Each gradient's relative error (`_error`, at least its floor as the
    scale), and in words what is wrong where it is missing, not numbers, of
    the wrong shape or not finite (error inf)."""
    errors: dict[str, float] = {}
    notes: dict[str, str] = {}
    for w in problem.wrt:
        want = np.asarray(expected[w], dtype=np.float64)
        if w not in grads:
            errors[w], notes[w] = float("inf"), "missing: no gradient returned"
            continue
        got, why = real_array(grads[w])
        if got is None:
            errors[w] = float("inf")
            notes[w] = "complex: a gradient of a real function is real" if why == "complex" \
                else why
            continue
        if got.shape != want.shape:
            errors[w] = float("inf")
            notes[w] = (f"shape {_shape_text(got.shape, concrete)} but expected "
                        f"{fmt(problem.variables[w].shape)}")
            continue
        if not np.all(np.isfinite(got)):
            errors[w], notes[w] = float("inf"), "not finite (nan or inf entries)"
            continue
        if problem.variables[w].structure and got.ndim == 2:
            got = (got + got.T) / 2
        errors[w] = _error(got, want, floors[w])
    return errors, notes


def _error(got: np.ndarray, want: np.ndarray, floor: float) -> float:
    """‖got − want‖∞ / max(‖got‖∞, ‖want‖∞, floor); 0 where both are 0."""
    scale = floored_scale(got, want, floor)
    return float(np.max(np.abs(got - want), initial=0.0)) / scale if scale > 0 else 0.0


def check_against(problem, function, dims=None, seed: int = 0, tol: float = 1e-6,
                  inputs=None) -> AgainstResult:
    """Compare a hand-written backward `function` (or a 'module:function'
    spec) with matcalc's gradients of `problem` at `inputs` ({name: array},
    as for `verify.check`), the others drawn at random in their domains:
    per gradient ‖theirs − ours‖∞ / max(‖theirs‖∞, ‖ours‖∞, floor)."""
    if isinstance(problem, str):
        from ..frontend.parser import parse
        problem = parse(problem)
    function, label = _function(function)
    check_settings(dims, seed, tol)
    bound, given = prepare(problem, dims, inputs)
    concrete = sizes(problem, bound)
    rng = np.random.default_rng(seed)
    values = {**draw(problem, concrete, rng), **given}
    value, expected, kwargs, size, noise = _matcalc(problem, values, rng)
    their_value, grads = _returned(function, kwargs, problem, label, concrete)
    floors = {w: NOISE_MARGIN * change / tol for w, change in noise.items()}
    errors, notes = _compare(problem, grads, expected, floors, concrete)
    unchecked = tuple(n for n in grads if n not in problem.wrt)
    return AgainstResult(errors, notes, tol, concrete, label,
                         _value_error(their_value, value, size), unchecked)
