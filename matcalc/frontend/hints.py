"""What to write instead: hints for habits from NumPy, PyTorch and Python.

One table per kind of mistake, each mapping what was written to the fix, so
an error names the fix rather than the nearest spelling: an unknown function
(`amax`, `len`, `tensordot`), an unknown name (`np`, `True`), an
attribute or method (`X.dot`, `X.shape`), a keyword (`keepdims`, `dim`) and
text the grammar cannot read (`X ^ 2`, `np.sum(X)`, `X.T()`, `X[[0, 1]]`).
"""

from __future__ import annotations

import re

from .. import ops
from ..errors import MatcalcError, closest

_NOT_YET = "is not in the language yet"
_CONTRACT = "write the contraction with einsum, as in einsum(\"ij,jk->ik\", A, B), or @"
_FLATTEN = "write reshape(x, (-1,))"
_AXIS = "index with None for a new axis, as in X[:, None], or write reshape(X, (N, 1, D))"
_JOIN = "write concatenate((a, b), axis=...)"
_MODULES = ("np", "numpy", "torch", "jnp", "jax", "tf", "math", "scipy", "F", "la",
            "linalg")

# An unknown function -> the fix. `{arg}` is the first argument as written,
# `{dim}` its first dimension.
FUNCTIONS = {
    "amax": "write max(x, axis=...) (maximum(a, b) is the elementwise maximum of two arrays)",
    "amin": "write min(x, axis=...) (minimum(a, b) is the elementwise minimum of two arrays)",
    "argmax": f"argmax {_NOT_YET} (it has no derivative)",
    "argmin": f"argmin {_NOT_YET} (it has no derivative)",
    "len": "write the dimension's name instead: len({arg}) is {dim}",
    "tensordot": f"tensordot {_NOT_YET}; {_CONTRACT}",
    "dot": "write a @ b for the matrix or inner product",
    "matmul": "write a @ b for the matrix product",
    "mm": "write a @ b for the matrix product",
    "inner": "write a @ b for the inner product of two vectors",
    "vdot": "write a @ b for the inner product of two vectors",
    "power": "write a ** p for a power",
    "pow": "write a ** p for a power",
    "multiply": "write a * b", "divide": "write a / b", "add": "write a + b",
    "subtract": "write a - b", "negative": "write -a", "absolute": "write abs(x)",
    "exp2": "write 2 ** x",
    "expit": "write sigmoid(x)", "logistic": "write sigmoid(x)", "sigma": "write sigmoid(x)",
    "σ": "write sigmoid(x)", "ln": "write log(x)",
    "logsoftmax": "write log_softmax(x, axis=...): it is computed stably",
    "inverse": "write inv(A)", "pinv": f"pinv {_NOT_YET}; inv(A) or solve(A, B) for "
                                      "a square A",
    "slogdet": "write logdet(A) for log |det A|", "diagonal": "write diag(X)",
    "identity": "write eye(N)", "zeros_like": "write zeros(N, D) with the dimension names",
    "ones_like": "write ones(N, D) with the dimension names",
    "prod": f"prod {_NOT_YET}; exp(sum(log(x))) for positive x",
    "cumprod": f"cumprod {_NOT_YET}; exp(cumsum(log(x))) for positive x",
    "diff": "write {arg}[1:] - {arg}[:-1] for diff({arg}) (along a matrix's rows: "
            "{arg}[:, 1:] - {arg}[:, :-1])",
    "heaviside": "write step(x), or where(x > 0, 1, 0)",
    "nuclear_norm": f"the nuclear norm {_NOT_YET}",
    "ravel": _FLATTEN, "flatten": _FLATTEN, "hstack": _JOIN, "vstack": _JOIN,
    "squeeze": _AXIS, "expand_dims": _AXIS, "unsqueeze": _AXIS,
    "clamp": "write clip(x, lo, hi)",
    "float": "numbers are already floats: drop float(...)",
    "int": "dimensions are already integers: drop int(...)",
    "shape": "write the dimension names of the declaration",
    "size": "write the dimension names of the declaration",
    "numel": "write the dimensions' names instead: numel({arg}) is {size}",
    "length": "write the dimension's name instead: length({arg}) is {dim}",
}

# An unknown name (not followed by '(') -> the fix.
NAMES = {module: f"drop the '{module}.' prefix: matcalc's functions have bare names, "
         "as in sum(X)" for module in _MODULES}
NAMES.update({"True": "True and False are not values in matcalc",
              "False": "True and False are not values in matcalc",
              "inf": "constants must be finite", "nan": "constants must be finite"})

# An attribute or method `x.name` -> the fix.
ATTRIBUTES = {
    "dot": "write X @ W for the matrix product",
    "transpose": "write X.T for the transpose",
    "t": "write X.T for the transpose",
    "shape": "write the dimension names of the declaration",
    "size": "write the dimension names of the declaration",
    "reshape": "write reshape(X, (N, D)) with the dimension names",
    "flatten": _FLATTEN, "ravel": _FLATTEN,
    "item": "a scalar is already a number: drop .item()",
    "numpy": "drop .numpy()",
}

# A keyword argument a function does not take -> the fix.
KEYWORDS = {
    "keepdims": "keepdims= is taken by the reductions sum, mean, max, min, logsumexp, "
                "var and std (for norm, index the result: norm(X, axis=1)[:, None])",
    "dim": "NumPy's name is axis=",
    "axes": "the keyword is axis=",
    "ord": "norm(x, ord=...) takes ord=2 or ord=1 (vectors), ord='fro' (matrices)",
    "dtype": "drop dtype=: the generated code follows its inputs' dtype",
    "out": "drop out=",
}

# Text the grammar cannot read: (pattern before the error, pattern at the
# error, fix). The patterns match the error's line; the first that matches
# gives the hint, and its groups (before's, then at's) fill `{0}`, `{1}`.
_MODULE = "|".join(_MODULES)
SYNTAX = [
    (r"^\s*\w+(?:\s*,\s*\w+)*\s*:[^=]*?(\d+)$", r"([A-Za-z_]\w*)",
     "a product of dimensions is named first: write F = {0} * {1} on a line "
     "before, then F in the shape"),
    (r"^\s*\w+(\s*,\s*\w+)*\s*:[^=]*$", r"[(\[{^,]",
     "declare shapes as N x D (the dimensions joined by x; a vector's is N)"),
    (r"", r"\^\s*T\b", "'^' is not an operator: write X.T for the transpose"),
    (r"(\w*)\s*$", r"\^\s*(?:-\s*1|\(\s*-\s*1\s*\)|\{\s*-\s*1\s*\})(?![\w.])",
     lambda name: "'^' is not an operator: write ** for an elementwise power, or "
     f"inv({name or 'A'}) for a matrix inverse"),
    (r"", r"\^", "'^' is not an operator: write ** for a power (or .T for a transpose)"),
    (rf"\b({_MODULE})((?:\.\w+)*)\.(\w+)\s*$", r"\(",
     lambda module, path, name: module_call(f"{module}{path}", name)),
    (r"\.\s*T\s*$", r"\(", "X.T is the transpose, not a method: write X.T without ()"),
    (r"\.\s*(\w+)\s*$", r"\(([^()]*)", lambda name, args: method(name, args)),
    (r"\w\s*\[[^\]]*$", r"", "an index is integers, slices (1:, ::-1), None and '...' "
                            "(X[:, -1], X[..., 1:], X[:, :, None]) or one integer input "
                            "(E[tokens]); lists and boolean masks are not in the language"),
    (r"", r"['\"]", "a string is only a keyword value, as in norm(X, ord='fro')"),
    (r"(==|!=|<=|>=|<|>)[^=<>!]*$", r"(==|!=|<=|>=|<|>)",
     "comparisons do not chain: where(0 < x, where(x < 1, a, b), b) for 0 < x < 1"),
    (r"^\s*$", r"%", "comments start with #, not %"),
    (r"", r"(//|%)", "'{0}' is not in the language; '/' is division (and comments start "
                    "with #)"),
    (r"\.$", r"([*/^])", lambda op: f"'.{op}' is MATLAB's: write " + {
        "*": "* (elementwise; @ is the matrix product)", "/": "/ (elementwise)",
        "^": "** (elementwise)"}[op]),
    (r"", r"~=", "write != for 'not equal'"),
    (r"", r"\\(frac|cdot|sum|begin|end|left|right|times|sqrt|mathbf|top|prod|log|exp)\b",
     "LaTeX is not the input language: write (a) / (b), *, sum(...), x.T"),
    (r"(\w+|\))\s*$", r"\\\s*(\w+)",
     lambda a, b: f"'\\' is not an operator: write solve({a}, {b}) for {a}⁻¹{b}"),
    (r"(\w+)\($", r":", lambda name: f"{name}(...) is a call: index with square brackets, "
     f"from 0, as in {name}[:, 0]"),
    (r"^\s*(\w+)\s+$", r"(\w+(?:\s+(?:x|×|\*)\s+\w+)*)\s*(?:#.*)?$",
     lambda name, shape: f"a declaration needs ':': write {name}: {shape}"),
    (r"^\s*\w+(?:\s*,\s*\w+)*\s*:[^=]*\bpositive\s+$", r"definite\b",
     "a positive definite matrix is declared spd, as in S: D x D spd"),
    (r"^\s*\w+(?:\s*,\s*\w+)*\s*:[^=]*\w\s+$", r"(\w+)", lambda word: domain(word)),
    (r"^\s*\w+(?:\s*,\s*\w+)*\s*:[^=]*$", r"\.\d|-",
     "a dimension must be a positive integer (or a name)"),
    (r"^\s*wrt\s*$", r"[:=]", "wrt is reserved: write wrt w, b (no ':' or '=')"),
    (r"", r"\[", "write a tuple (...): concatenate((A, B), axis=0), transpose(X, (1, 0)), "
                 "axis=(0, 1); lists are not in the language"),
    (r"\d$", r"j\b", "complex numbers are not in the language"),
    (r"\b0$", r"[xX]([0-9a-fA-F]+)", lambda digits: "hex literals are not in the language: "
     f"write {int(digits, 16)}"),
    (r"(\d+)$", r"((?:_\d+)+)", lambda a, b: f"write {a}{b.replace('_', '')} (no _ in "
     "numbers)"),
    (r"\blambda\s*$", r"", "lambda is not in the language: a problem is declarations, "
     "intermediates (Z = ...) and the function"),
    (r"", r"([^\x00-\x7f])", lambda char: character(char)),
    (r"", r"\|\|", "'||' is not an operator: write norm(x) for ||x|| (norm(x) ** 2 "
                   "for its square)"),
    (r"", r"\|", "'|' is not an operator: write abs(x) for |x|, norm(x) for a norm, "
                 "det(X) for a determinant"),
    (r"^[^:]*=[^=]*?(\w|\))\s*$", r"(?!(?:wrt|if|else|for|and|or|not|in|is)\b)[A-Za-z_(]",
     "write the product: x.T @ A @ x for a matrix product, x * y elementwise"),
    (r"^\s*(import|from|def|return|print|for|while|if|lambda|class)\b", r"",
     "a problem is not Python: declarations (X: N x D), intermediates (Z = ...) "
     "and the function"),
]


# A carriage return that no line feed follows: old Mac line endings.
CR_ONLY = ("the lines end in a carriage return alone (CR): save the file with LF (or CRLF) "
           "line endings")

# A character outside ASCII that is not in a name -> what to write.
CHARACTERS = {"×": "* (elementwise) or @ (matrix product)",
              "·": "* (elementwise) or @ (matrix product)", "⋅": "* or @",
              "⊙": "* (elementwise)", "∘": "* (elementwise)", "∑": "sum(...)",
              "Σ": "sum(...)", "−": "-", "–": "-", "÷": "/", "²": "** 2", "³": "** 3",
              "∈": "':' (x: N declares a vector)", "ᵀ": ".T", "⊤": ".T", "√": "sqrt(...)",
              "≤": "<=", "≥": ">=", "≠": "!=", "（": "(", "）": ")", "‘": "'", "’": "'",
              "“": '"', "”": '"'}
INVISIBLE = "\u00a0\u200b\u200c\u200d\u2060\ufeff\u202f\u3000"


DOMAIN_WORDS = ("symmetric", "spd", "positive", "sign", "onehot", "int")


def domain(word: str) -> str:
    """The fix for a word after a declared shape: the domain word it
    misspells (in any case), or ''."""
    close = closest(word, DOMAIN_WORDS)
    if close == word:  # a right word in a wrong place: one word, after the shape
        return ("a shape takes at most one structure (symmetric or spd), then one "
                "domain (positive, sign, onehot or int), as S: D x D symmetric positive")
    return f"did you mean '{close}'?" if close else ""


def character(char: str) -> str:
    """The fix for a character outside ASCII: its ASCII spelling, or to
    replace it (an invisible one named, as U+00A0 NO-BREAK SPACE)."""
    import unicodedata
    name = f"U+{ord(char):04X} {unicodedata.name(char, 'UNKNOWN')}"
    if char in CHARACTERS:
        return f"{char!r} ({name}) is not in the language: write {CHARACTERS[char]}"
    if char in INVISIBLE or char.isspace():
        return f"the text has a {name} here: replace it with a space (or delete it)"
    return f"{char!r} ({name}) is not in the language: replace it"


# An unknown name -> the fix, by (pattern before it, pattern of the name, fix).
NAME_PATTERNS = [
    (r"\*\*\s*$", r"T$", "'**T' is not a transpose: write X.T"),
    (r"\[[^\]]*$", r"end$", "write -1 for the last entry, as in y[-1] (indices from 0)"),
    (r"", r"(\w*?)([²³])$", lambda base, power: f"write {base} ** {'²³'.index(power) + 2}"),
    (r"", r"(\w*?)ᵀ$", lambda base: f"write {base}.T"),
]


def name(written: str, before: str) -> str:
    """The fix for an unknown name `written` after the text `before`, or ''."""
    if written in NAMES:
        return NAMES[written]
    for pattern_before, pattern, hint in NAME_PATTERNS:
        match = re.search(pattern_before, before) and re.match(pattern, written)
        if match:
            return hint(*match.groups()) if callable(hint) else hint
    return ""


def _first_dim(args) -> str:
    shape = getattr(args[0], "shape", ()) if args else ()
    return str(shape[0]) if shape else "its first dimension's name (a number has none)"


def function(name: str, written_args: list[str], args) -> str:
    """The fix for an unknown function `name`, or ''."""
    hint = FUNCTIONS.get(name, "")
    arg = written_args[0] if written_args else "X"
    if ("{dim}" in hint or "{size}" in hint) and not args:
        return hint.format(arg=arg, dim="the dimension's name", size="a product of them")
    shape = getattr(args[0], "shape", ()) if args else ()
    size = " * ".join(str(d) for d in shape) or "1"
    return hint.format(arg=arg, dim=_first_dim(args), size=size) if hint else ""


def module_call(prefix: str, name: str) -> str:
    """The fix for `np.name(...)` (any module `prefix`): the bare function,
    or the table's fix, or that matcalc has no such function."""
    hint = function(name, [], []) or (f"write {name}(...)" if name in ops.function_names()
                                      else "")
    if not hint:
        return f"matcalc has no function '{name}' (its functions have bare names, as in sum(X))"
    return f"drop the '{prefix}.' prefix: {hint}"


_POWERS = ("pow", "power", "__pow__")


def method(name: str, args: str) -> str:
    """The fix for a method call `X.name(args)`: a function of the language
    or the table's fix, never a function the language lacks."""
    if name in _POWERS:
        power = args.strip() if args.strip() and "," not in args else "p"
        return f"write X ** {power} for X.{name}({power})"
    if name in ATTRIBUTES:
        return ATTRIBUTES[name]
    if name in ops.function_names():
        return f"methods are not in the language: call the function, as in {name}(X) " \
               f"for X.{name}()"
    return "methods are not in the language: " + (
        function(name, [], []) or "call a function, as in sum(X) for X.sum()")


def syntax(line: str, column: int) -> str:
    """The fix for text the grammar cannot read at `column` (1-based) of `line`, or ''."""
    before, at = line[:column - 1], line[column - 1:]
    for pattern_before, pattern_at, hint in SYNTAX:
        match_before = re.search(pattern_before, before) if pattern_before else None
        match_at = re.match(pattern_at, at) if pattern_at else None
        if (pattern_before and not match_before) or (pattern_at and not match_at):
            continue
        groups = [g or "" for m in (match_before, match_at) if m for g in m.groups()]
        return hint(*groups) if callable(hint) else hint.format(*groups)
    return ""


def product(op, left, right, lhs: str, rhs: str) -> str:
    """For `a op b` of shapes that do not fit, `lhs` and `rhs` as written,
    the fix (with its '; '), or '': `a * b` that fits a matrix product is
    `a @ b`; `a @ b` whose inner sizes differ names them, and the transpose
    that fits; a vector along a matrix's rows is `y[:, None]`."""
    op = str(op)
    if op == "*" and _fits(ops.matmul, left, right):
        return f"; for a matrix product write {lhs} @ {rhs}"
    if op == "@" and left.ndim >= 1 and right.ndim >= 1:
        inner = right.shape[0] if right.ndim == 1 else right.shape[-2]
        hint = f"; the inner sizes {left.shape[-1]} and {inner} differ"
        for a, b, written in ((ops.transpose(left), right, f"{postfixed(lhs)} @ {rhs}"),
                              (left, ops.transpose(right), f"{lhs} @ {postfixed(rhs)}")):
            if a.ndim == 2 and _fits(ops.matmul, a, b):
                return f"{hint}: {written} fits"
        return hint
    if op in "+-*/" and {left.ndim, right.ndim} == {1, 2}:
        matrix, vector, written = (left, right, rhs) if left.ndim == 2 else (right, left, lhs)
        if matrix.shape[0] == vector.shape[0] != matrix.shape[1]:
            return f"; to match the rows, write {postfixed(written, '[:, None]')} (a column)"
    return ""


def _fits(build, *args) -> bool:
    try:
        build(*args)
    except MatcalcError:
        return False
    return True


def postfixed(written: str, postfix: str = ".T") -> str:
    """`written` with a postfix (.T, [:, None]): a name, a call or a
    bracketed expression as it is, anything else in parentheses."""
    depth, closes_at_end = 0, True
    for k, char in enumerate(written):
        depth += (char in "([") - (char in ")]")
        if depth == 0 and k < len(written) - 1 and char in ")]" and written[0] == "(":
            closes_at_end = False
    simple = re.fullmatch(r"\w+", written) or (
        written.endswith((")", "]")) and (re.match(r"\w+[(\[]", written) or
                                          (written.startswith("(") and closes_at_end)))
    return f"{written}{postfix}" if simple else f"({written}){postfix}"


ELEMENTWISE = {"max": "maximum", "min": "minimum"}
AXES = re.compile(r"\(?\s*-?\d+(\s*,\s*-?\d+)*\s*,?\s*\)?")


def positional_axis(written: str, params, extra: list[str]) -> str:
    """The fix for keyword parameters passed by position (`mean(X, 1)`); for
    `max(x, 0)` or `max(0, x)`, two arrays, the elementwise `maximum`."""
    names = list(params)
    if written in ELEMENTWISE and extra and not AXES.fullmatch(extra[0]):
        return (f"{written}(a, b) of two arrays is {ELEMENTWISE[written]}(a, b); "
                f"{written}(x, axis=...) reduces x")
    if not extra or len(extra) > len(names):
        return ""
    if len(extra) > 1 and "axis" in names and all(re.fullmatch(r"-?\d+", e) for e in extra):
        return f"several axes are one tuple: write {written}(..., axis=({', '.join(extra)}))"
    keywords = ", ".join(f"{key}={value}" for key, value in zip(names, extra))
    plural = " are keywords" if len(extra) > 1 else " is a keyword"
    also = "" if written not in ELEMENTWISE else \
        f" ({ELEMENTWISE[written]}(x, {extra[0]}) is elementwise)"
    return f"{', '.join(names[:len(extra)])}{plural}: write {written}(..., {keywords}){also}"
