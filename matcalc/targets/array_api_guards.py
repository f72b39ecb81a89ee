"""The input checks of the array-API target, written with `xp` alone.

`_checked(*arrays)` returns the inputs' namespace `xp` (array-api-compat's
`array_namespace` of the arrays among them; NumPy arrays beside another
library's are taken into it, as Dask and PyTorch CPU do; NumPy's namespace
when there are no arrays), the
first array's device, and the inputs as arrays of their declared shapes: an
array-like or Python number goes through `xp.asarray` in the arrays' floating
type, and every input takes that one type (float32 beside float64: both
float64), each dimension name takes one size throughout, and a `ValueError` names
the input (`y: expected shape (N,) = (6,), got (6, 1)`). Only `.shape` is
read, so nothing is computed (a Dask graph stays lazy).
"""

from __future__ import annotations

from . import bounds
from .guards import _BY_NAME, by_name_source, shapes  # noqa: F401  (the same SHAPES and _by_name)
from .guards import _axis, _tuple, SHAPE_CHECK, WIDTH, direction, fast_path, integers

_CONVERT = """        if not hasattr(x, "dtype"):
            try:"""
_INTEGER_OR_CONVERT = """        if name in INTEGERS:
            x = _indices(xp, name, x, device)
        elif not hasattr(x, "dtype"):
            try:"""
_INDICES = '''
def _indices(xp, name, x, device):
    """An integer input: an integer array (indices) of the namespace xp."""
    if not hasattr(x, "dtype"):
        x = xp.asarray(x, device=device)
    if not xp.isdtype(x.dtype, "integral"):
        raise TypeError(f"{name}: expected an integer array (indices), "
                        f"got {x.dtype}")
    return x
'''

_CHECKED = '''
# The namespace of each combination of array types met (array_namespace
# takes microseconds per array), and the array types met whose arrays are
# all on the CPU, NumPy's (whose device need not be read: 0.7 us a call).
_NAMESPACES = {}
_ON_CPU = set()


def _checked(*arrays):
    """(xp, device, *inputs): the inputs' namespace and device, and the
    inputs in INPUTS order as arrays of their declared SHAPES and of one
    floating type, the floating inputs' together (array-likes, numbers,
    and NumPy arrays beside another library's, through xp.asarray). Each
    dimension name takes one size, at least 1, throughout: else
    ValueError. First the usual case: arrays of one library and floating
    type, of the declared shapes."""
{FAST}
    given = [x for x in arrays if hasattr(x, "shape") and hasattr(x, "dtype")]
    native = [x for x in given if not is_numpy_array(x)]
    if native and len(native) < len(given):  # NumPy beside another library
        xp, device = array_namespace(*native), _device_of(native[0])
        arrays = [xp.asarray(x, device=device) if is_numpy_array(x) else x
                  for x in arrays]
        given = [x for x in arrays if hasattr(x, "dtype")]
    if given:
        kinds = tuple({type(x): None for x in given})
        xp = _NAMESPACES.get(kinds) or _NAMESPACES.setdefault(
            kinds, array_namespace(*given))
        _ON_CPU.update(type(x) for x in given if is_numpy_array(x))
    else:
        import array_api_compat.numpy as xp
    device = _device_of(given[0]) if given else "cpu"
    floats = (xp.float64, xp.float32)
    floating = [x.dtype for x in given if x.dtype in floats or _numbers(
        xp, x.dtype) and xp.isdtype(x.dtype, "real floating")]
    dtype = xp.result_type(*floating) if floating else xp.float64
    sizes = {SIZES}  # dimension -> size, from the first input that has it
    out = []
    for name, x, shape in zip(INPUTS, arrays, SHAPES):
        if not hasattr(x, "dtype"):
            try:
                if x is None or isinstance(x, str):  # asarray: nan, or text
                    raise TypeError
                x = xp.asarray(x, dtype=dtype, device=device)
            except (TypeError, ValueError):
                raise TypeError(f"{name}: expected an array of real numbers, "
                                f"got {x!r:.40}") from None
        elif not _numbers(xp, x.dtype):  # complex, strings, objects
            raise TypeError(f"{name}: expected an array of real numbers, "
                            f"got {x.dtype}")
        elif x.dtype != dtype:  # one floating type throughout
            x = xp.astype(x, dtype)
        got = tuple(x.shape)
''' + SHAPE_CHECK + '''        out.append(x)
{LEAST}
    return (xp, device, *out)


def _numbers(xp, dtype):
    """Whether arrays of dtype hold real numbers (not complex numbers, nor
    NumPy's strings and objects, which are no dtype of the standard)."""
    try:
        return xp.isdtype(dtype, ("real floating", "integral", "bool"))
    except (TypeError, ValueError):
        return False
'''

DIRECTION = direction(
    """The direction for input x, v itself or v[name] (several inputs, or
    a dict for one): of x's shape, in x's namespace, floating type and
    device.""", '''
    if (type(v) is type(x) and v.dtype == x.dtype and v.shape == x.shape
            and (type(x) in _ON_CPU or _device_of(v) == _device_of(x))):
        return v  # the usual case (NumPy arrays are all on the CPU)
    xp = array_namespace(x)
    label = "v" if name is None else f"v[{name!r}]"
    given = v if hasattr(v, "dtype") else xp.asarray(v, device=_device_of(x))
    if not _numbers(xp, given.dtype):  # complex, strings, objects
        raise TypeError(f"{label}: expected an array of real numbers, "
                        f"got {given.dtype}")
    v = xp.asarray(v, dtype=x.dtype, device=_device_of(x))
    if tuple(v.shape) != tuple(x.shape):
        raise ValueError(f"{label}: expected shape {tuple(x.shape)}, "
                         f"got {tuple(v.shape)}")
    return v
''')

# The check `backward` makes of the dout of a scalar function.
# A complex dout refused (a real function's gradients are real), for a
# library's array or a Python number alike.
COMPLEX_DOUT = '''
if "complex" in str(getattr(dout, "dtype", type(dout))):
    raise TypeError(f"dout: expected a real number, got "
                    f"{dout!r:.40}")
'''

SCALAR_DOUT = '''
if len(getattr(dout, "shape", ())):  # a scalar function's dout is one
    raise ValueError(f"dout: expected a scalar, got shape "
                     f"{tuple(dout.shape)}")
'''.rstrip("\n") + COMPLEX_DOUT

# The check `backward` makes of the dout of an array-valued function.
ARRAY_DOUT = '''
if tuple(getattr(dout, "shape", (None,))) != dout_shape:
    raise ValueError(f"dout: expected shape {dout_shape}, got "
                     f"{getattr(dout, 'shape', type(dout))}")
'''

TEMPLATE = _BY_NAME + _CHECKED + DIRECTION + SCALAR_DOUT + ARRAY_DOUT


def call(names: str, by_name: bool = False) -> list[str]:
    """`(xp, device, X, y) = _checked(X, y)`, the first line of a function
    (by keyword with `by_name`); two lines, through `inputs`, where one
    would not fit."""
    given = "*_by_name(inputs)" if by_name else names
    if not names:
        return ["_by_name(inputs)"] if by_name else []
    target = _tuple(["xp", "device", *names.split(", ")])
    line = f"{target} = _checked({given})"
    if len(line) <= WIDTH - 4:
        return [line]
    return [f"inputs = _checked({given})", f"{target} = inputs"]


def _kinds(checked, numbers) -> list[str]:
    """Arrays of one type and one floating type (the dtypes tested by
    identity: equal dtypes that are not one object take the general way);
    the scalars given as floats."""
    test = [" is ".join(f"type({n})" for n in checked),
            " is ".join(f"{n}.dtype" for n in checked)] if len(checked) > 1 else []
    test += [" is ".join(["float"] + [f"type({n})" for n in numbers])] if numbers else []
    return ["and " + t for t in test]


def _accept(arrays, names, numbers) -> list[str]:
    """The namespace met before for the arrays' type, if their type is
    float64 or float32: the arrays as given, a float scalar as a 0-d array
    of their type on their device, indexed by `[()]`: a 0-d array still,
    but in NumPy its scalar type, as NumPy's reductions return, whose
    arithmetic costs a tenth of a 0-d array's."""
    first = arrays[0]
    note = ["    # [()]: 0-d; in NumPy its scalar type (cheaper arithmetic)"] * bool(numbers)
    return [f"xp = _NAMESPACES.get((type({first}),))",
            f"if xp is not None and {first}.dtype in (xp.float64, xp.float32):",
            f'    device = "cpu" if type({first}) in _ON_CPU else _device_of({first})',
            *note,
            *(f"    {n} = xp.asarray({n}, dtype={first}.dtype, device=device)[()]"
              for n in numbers),
            f"    return {_tuple(['xp', 'device', *names])}"]


def checked(problem, ident, wrap) -> list[str]:
    """The source of `_by_name` and `_checked` for `problem`'s inputs, the
    usual case (arrays of one library, of the declared shapes, met before)
    written for the problem."""
    fixed = sorted({a for v in problem.variables.values() for a in map(_axis, v.shape)
                    if isinstance(a, int)})
    sizes = "{" + ", ".join(f"{n}: {n}" for n in fixed) + "}"
    if not problem.variables:
        return by_name_source(problem)
    has_array = any(v.shape for v in problem.variables.values())
    ints = any(v.domain == "int" for v in problem.variables.values())
    fast = [w for line in (fast_path(problem, ident, _kinds, _accept)
                           if has_array and not ints else [])
            for w in wrap(line, "    ")]
    body = _CHECKED.strip("\n").replace("{SIZES}", sizes).replace(
        "{LEAST}\n", "".join(line + "\n" for line in bounds.least_checks(problem)))
    if ints:  # indices stay integers
        body = body.replace(_CONVERT, _INTEGER_OR_CONVERT)
        ranges = bounds.section(problem, ident, wrap, bounds.ARRAY_API)
        if ranges:
            body = body.replace("return (xp, device, *out)",
                                "return (xp, device, *_in_ranges(out))")
        return [*by_name_source(problem), "", "", integers(problem), "", "", _INDICES.strip("\n"),
                *ranges, "", "", body.replace("{FAST}\n", "")]
    usual = "".join(f + "\n" for f in fast)
    return [*by_name_source(problem), "", "", body.replace("{FAST}\n", usual)]
