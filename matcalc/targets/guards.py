"""The input checks every function of a generated module starts with.

The module holds `SHAPES`, each input's declared shape (a dimension's name or
a fixed size per axis), and two helpers: `_by_name(inputs)`, the keyword
inputs in `INPUTS` order (a `TypeError` names a missing or unknown one), and
`_checked(*arrays)`, the inputs as NumPy arrays of their declared shapes,
each dimension name taking one size throughout (a `ValueError` names the
input, the declared shape with the sizes bound so far, and the shape given:
`y: expected shape (N,) = (6,), got (6, 1)`). For floating arrays of the
right shapes the check is a few tuple comparisons, written for the problem;
anything else goes through the general loop, which converts or explains.
"""

from __future__ import annotations

import textwrap

import sympy

from . import bounds

# The check of one array's shape against its declared one (sizes bound on
# first sight), shared by every target's `_checked`.
SHAPE_CHECK = '''\
        if len(got) != len(shape) or 0 in got or [
                sizes.setdefault(d, n) for d, n in zip(shape, got)] != [*got]:
            want, bound = (", ".join(f"{d}" for d in s) + ","[len(s) != 1:]
                           for s in (shape, [sizes.get(d, d) for d in shape]))
            want += f") = ({bound}" if bound != want else ""
            raise ValueError(f"{name}: expected shape ({want}), got {got}"
                             + " (sizes are at least 1)" * (0 in got))
'''

_GENERAL = '''
    sizes = {SIZES}  # dimension -> size, from the first input that has it
    out = []
    for name, x, shape in zip(INPUTS, arrays, SHAPES):
        if type(x) in (float, int):  # takes the arrays' floating type, below
            got = ()
        else:
            if type(x) is not np.ndarray or x.dtype.kind != "f":
                given = x
                try:
                    x = np.asarray(x)
                except ValueError:  # a ragged list
                    raise ValueError(f"{name}: rows of unequal length")
                if x.dtype.kind not in "fbiu":  # complex, strings, None
                    what = x.dtype if x.ndim else f"{given!r:.40}"
                    raise TypeError(f"{name}: expected an array of real "
                                    f"numbers, got {what}")
                x = x if x.dtype.kind == "f" else x.astype(np.float64)
            got = x.shape
''' + SHAPE_CHECK + '''        out.append(x)
    {LEAST}
    kind = np.result_type(*(x for x in out if type(x) not in (float, int)
                            and x.dtype.kind == "f"), 1.0)  # one floating type
    out = [kind.type(x) if type(x) in (float, int)
           else x.astype(kind, copy=False) if x.dtype.kind == "f" else x
           for x in out]
    return out
'''

_DOC = '''
def _checked(*arrays):
    """The inputs, in INPUTS order, as arrays of their declared SHAPES.

    Floating arrays of one type are used as given, of mixed types made
    the widest of them; array-likes (lists, integer or boolean arrays)
    become float64 arrays (np.asarray); a Python number for a scalar input
    takes the floating type of the other inputs. Each dimension name takes
    one size, at least 1, throughout: else ValueError.
    """
'''

_BY_NAME = '''
def _by_name(inputs):
    """The inputs given by keyword, in INPUTS order."""
    try:
        if len(inputs) == len(INPUTS):
            return {PICKED}
    except KeyError:
        pass
    wrong = [f"missing input {n!r}" for n in INPUTS if n not in inputs]
    wrong += [f"unknown input {n!r}" for n in inputs if n not in INPUTS]
    raise TypeError(", ".join(wrong) + "; the inputs are " + ", ".join(INPUTS))
'''


def by_name_source(problem) -> list[str]:
    """The source of `_by_name(inputs)` for `problem`'s inputs: each read
    by its key, the usual case (a list comprehension over INPUTS costs
    three times as much), the list wrapped within WIDTH."""
    lead = " " * 12 + "return ["
    picked = textwrap.wrap(", ".join(f"inputs[{n!r}]" for n in problem.variables) + "]",
                           WIDTH, initial_indent=lead, subsequent_indent=" " * len(lead),
                           break_long_words=False, break_on_hyphens=False) or [lead + "]"]
    source = _BY_NAME.strip("\n").split("\n")
    at = next(k for k, line in enumerate(source) if "{PICKED}" in line)
    source[at:at + 1] = picked
    return ["\n".join(source)]


def direction(doc: str, shaped: str) -> str:
    """The source of `_direction(v, x, name=None)`, the hvp's direction for
    the input x, with the docstring `doc`: v itself, or v[name] for several
    inputs or a dict for one (a TypeError names what is missing or unknown),
    then made x's kind of array of x's shape by the lines `shaped`."""
    return ('\ndef _direction(v, x, name=None):\n    """' + doc + '"""\n' + _PICK
            + shaped.lstrip("\n"))


# The direction v, or v[name] for several inputs or a dict for one (as
# several take it).
_PICK = '''
    if name is None and type(v) is dict:  # one variable's, by its name
        name = WRT[0]
    if name is not None:
        if type(v) is not dict:
            keys = ", ".join(f"{k!r}: ..." for k in WRT)
            raise TypeError(f"v: one direction per variable "
                            f"({', '.join(WRT)}), as a dict {{{keys}}}")
        unknown = [k for k in v if k not in WRT]
        if unknown:
            raise TypeError(f"v[{unknown[0]!r}]: not a variable of "
                            f"the gradient ({', '.join(WRT)})")
        if name not in v:
            raise TypeError(f"v[{name!r}] is missing: v needs a direction "
                            f"for each of {', '.join(WRT)}")
        v = v[name]
'''.lstrip("\n")

DIRECTION = direction(
    """The direction for input x, v itself or v[name] (several inputs, or
    a dict for one): of x's shape and floating type (array-likes made
    arrays).""", '''
    if (type(v) is np.ndarray and v.dtype is x.dtype
            and v.shape == x.shape):  # x: an array or NumPy scalar
        return v  # the usual case
    label = "v" if name is None else f"v[{name!r}]"
    if type(v) not in (float, int):
        v = np.asarray(v)
        if v.dtype.kind not in "fbiu":  # complex, strings, None
            raise TypeError(f"{label}: expected an array of real numbers, "
                            f"got {v.dtype}")
        v = v.astype(x.dtype, copy=False)
    if np.shape(v) != x.shape:
        raise ValueError(f"{label}: expected shape {x.shape}, "
                         f"got {np.shape(v)}")
    return v
''')

# The check `backward` makes of the dout of a scalar function (module level
# here so that its strings are parsed with the helpers').
SCALAR_DOUT = '''
if np.ndim(dout):  # the function is a scalar, so is dout
    raise ValueError(f"dout: expected a scalar, got shape "
                     f"{np.shape(dout)}")
if np.iscomplexobj(dout):  # a real function's gradients are real
    raise TypeError(f"dout: expected a real number, got "
                    f"{dout!r:.40}")
'''

# The check `backward` makes of the dout of an array-valued function: an
# array of the value's shape exactly (a row or a number would broadcast).
ARRAY_DOUT = '''
if np.shape(dout) != dout_shape:  # the upstream gradient: the value's
    raise ValueError(f"dout: expected shape {dout_shape}, got "
                     f"{np.shape(dout)}")
'''

WIDTH = 79


# The helpers' fixed text (parsed by tests that read every string the
# generated code holds).
_INDICES = '''
def _indices(name, x):
    """An integer input: an array of integers (indices), never converted."""
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array (indices), "
                        f"got {x.dtype}")
    return x
'''

TEMPLATE = (_BY_NAME + _DOC + _GENERAL + DIRECTION + SCALAR_DOUT + ARRAY_DOUT + _INDICES
            + bounds.NUMPY)


def _axis(d):
    """A declared axis as the check sees it: a fixed size, or a name."""
    d = sympy.sympify(d)
    return int(d) if d.is_Integer else str(d)


def _tuple(items) -> str:
    items = list(items)
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def shapes(problem) -> list[str]:
    """The `SHAPES` assignment: each input's declared shape."""
    items = [_tuple(repr(_axis(d)) for d in v.shape) for v in problem.variables.values()]
    return ["# The inputs' declared shapes: a dimension's name, or a fixed size.",
            "SHAPES = " + _tuple(items)]


def fast_path(problem, ident, kinds, accept) -> list[str]:
    """`_checked`'s usual case, written for the problem: each dimension read
    where it first appears (a whole shape unpacked where every axis of an
    input is a new name: `N, D = X.shape`), then a comparison of each other
    shape (cheaper than one of tuples of them) and the tests `kinds(arrays,
    numbers)` of the arrays' kinds (and of the scalar inputs `numbers` given
    as Python floats), as `usual`; where it holds, the lines `accept(arrays,
    names, numbers)`, which return, run after the `try` (so that an error
    they raise is not taken for a bad rank). Empty when a declared axis is
    neither a name nor a size."""
    if not all(isinstance(d, (sympy.Symbol, sympy.Integer))
               for v in problem.variables.values() for d in v.shape):
        return []
    names = [ident[n] for n in problem.variables]
    arrays = [n for n, v in zip(names, problem.variables.values()) if v.shape]
    numbers = [n for n in names if n not in arrays] if arrays else []
    known: list[str] = []  # each dimension, in the order it first appears
    read: dict[str, str] = {}  # a dimension read by index -> where
    unpacked, got, want = [], [], []
    for name, v in zip(names, problem.variables.values()):
        if name in numbers:
            continue
        axes = [_axis(d) for d in v.shape]
        if axes and all(isinstance(a, str) and a not in known for a in axes) \
                and len(set(axes)) == len(axes):
            unpacked.append(f"{_tuple(ident[a] for a in axes)} = {name}.shape")
            known += axes
            continue
        for k, a in enumerate(axes):
            if isinstance(a, str) and a not in known:
                known.append(a)
                read[ident[a]] = f"{name}.shape[{k}]"
        got.append(f"{name}.shape")
        want.append(_tuple(ident[a] if isinstance(a, str) else str(a) for a in axes))
    checked = [n for n in names if n not in numbers]
    test = [f"and {g} == {w}" for g, w in zip(got, want)]
    test += [f"and 0 not in {_tuple(ident[a] for a in known)}"] if known else []
    test += [f"and {ident[d]} >= {n}" for d, n in sorted(bounds.least_sizes(problem).items())]
    test += kinds(checked, numbers)
    test[0] = "usual = (" + test[0].removeprefix("and ")
    test[-1] += ")"
    lines = [f"{_tuple(names)} = arrays",
             "try:  # the usual case: float arrays of the declared shapes, float scalars"
             if numbers else "try:  # the usual case: floating arrays of the declared shapes"]
    lines += ["    " + line for line in unpacked]
    if read:
        lines.append(f"    {', '.join(read)} = {', '.join(read.values())}")
    condition = [w for k, part in enumerate(test) for w in textwrap.wrap(
        part, WIDTH - 8, initial_indent="" if k == 0 else " " * 9,
        subsequent_indent=" " * 9, break_long_words=False, break_on_hyphens=False)]
    return lines + ["    " + c for c in condition] + [
        "except (AttributeError, IndexError, ValueError):  # not an array, bad rank",
        "    usual = False",
        "if usual:"] + ["    " + line for line in accept(arrays, names, numbers)]


def _numpy_kinds(checked, numbers) -> list[str]:
    """NumPy arrays of one floating type (one `is` test of the dtypes costs
    half of a `kind` test of each; mixed types go the general way); the
    scalars given as floats."""
    test = [" is ".join(["and np.ndarray"] + [f"type({n})" for n in checked])]
    if len(checked) > 1:
        test.append("and " + " is ".join(f"{n}.dtype" for n in checked))
    test.append(f'and {checked[0]}.dtype.kind == "f"')
    return test + ([" is ".join(["and float"] + [f"type({n})" for n in numbers])]
                   if numbers else [])


def _numpy_accept(arrays, names, numbers) -> list[str]:
    """The arrays as given; a float scalar as a scalar of the first array's
    type."""
    if not numbers:
        return ["return arrays"]
    return ["return " + _tuple(f"{arrays[0]}.dtype.type({n})" if n in numbers else n
                               for n in names)]


def call(names: str, by_name: bool = False) -> list[str]:
    """`(X, y) = _checked(X, y)`, the first line of a function: the inputs
    (by keyword with `by_name`) checked and made arrays; two lines, through
    `inputs`, where one would not fit. Without inputs, only the keywords
    are checked (there must be none)."""
    given = "*_by_name(inputs)" if by_name else names
    if not names:
        return ["_by_name(inputs)"] if by_name else []
    target = _tuple(names.split(", "))
    line = f"{target} = _checked({given})"
    if len(line) <= WIDTH - 4:
        return [line]
    return [f"inputs = _checked({given})", f"{target} = inputs"]


def checked(problem, ident, wrap) -> list[str]:
    """The source of `_by_name` and `_checked` for `problem`'s inputs, named
    in the code by `ident`; `wrap(line, indent)` keeps a line within WIDTH."""
    fixed = sorted({a for v in problem.variables.values() for a in map(_axis, v.shape)
                    if isinstance(a, int)})
    sizes = "{" + ", ".join(f"{n}: {n}" for n in fixed) + "}"
    if not problem.variables:  # nothing to check but that no keyword is given
        return by_name_source(problem)
    ints = [ident[n] for n, v in problem.variables.items() if v.domain == "int"]
    ranges = bounds.section(problem, ident, wrap, bounds.NUMPY)
    accept = ((lambda *a: bounds.returned(_numpy_accept(*a))) if ranges else _numpy_accept)
    fast = [w for line in fast_path(problem, ident, integer_kinds(_numpy_kinds, ints), accept)
            for w in wrap(line, "    ")]
    general = _GENERAL.strip("\n").replace("{SIZES}", sizes).replace(
        "    {LEAST}\n", "".join(line + "\n" for line in bounds.least_checks(problem)))
    if not ints:
        return [*by_name_source(problem), "", "", _DOC.strip("\n"), *fast, general]
    general = general.replace(_FLOATING, _INTEGER_OR_FLOATING)
    if ranges:
        general = "\n".join(bounds.returned(general.split("\n")))
    return [*by_name_source(problem), "", "", integers(problem), "", "", _INDICES.strip("\n"),
            *ranges, "", "", _DOC.strip("\n"), *fast, general]


def integers(problem) -> str:
    """`INTEGERS = ('tokens',)`: the integer inputs (indices)."""
    return "INTEGERS = " + _tuple(repr(n) for n, v in problem.variables.items()
                                  if v.domain == "int")


def integer_kinds(kinds, ints: list):
    """`kinds` for the floating inputs, and a test that each integer input
    (`ints`, by name in the code) is an integer array."""
    def both(checked, numbers):
        floating = [n for n in checked if n not in ints]
        return (kinds(floating, numbers) if floating else []) + [
            f'and {n}.dtype.kind in "iu"' for n in ints]
    return both


_FLOATING = """            if type(x) is not np.ndarray or x.dtype.kind != "f":"""
_INTEGER_OR_FLOATING = """            if name in INTEGERS:
                x = _indices(name, x)
            elif type(x) is not np.ndarray or x.dtype.kind != "f":"""


