"""Bad and hostile input.

* A corpus of malformed and ill-typed problems (extending
  `tests/test_errors.py`, none repeated): each raises exactly the documented
  `MatcalcError` subclass, at the line and column given, with a message that
  says what is wrong; through the CLI each exits with 2 and one clear message
  (the line, the source line and a caret), never a traceback.
* A fuzz test: valid problems mutated (byte and bit flips, insertions,
  deletions, truncations, splices, shuffled lines, token soup) and random
  text, each run in process through parse, grad, printing, LaTeX, codegen,
  loading the module and running it once, with a time bound per input. The
  only outcomes allowed are success or a `MatcalcError` (never another
  exception, never a RecursionError, never a hang).
* Deep and wide input: 10,000 nested parentheses, unary minuses, reductions
  and transposes, a 3,000-deep chain of functions, a 1,000-term sum of
  distinct terms, 500 variables, 3,000 statements, and input at the limits
  docs/language.md states (brackets 20,000 deep, 50,000 tokens, a 5,000-deep
  sin(sin(…))): each works end to end (values checked); one bracket or one
  token more is refused with a clear MatcalcError.
* Names are never code: Python keywords, builtins, the generated module's own
  names, dunders and Unicode names (also names equal after NFKC) work as
  variables, intermediates, functions and dimensions; comments and would-be
  strings never reach the generated code, which imports only NumPy and calls
  nothing dangerous (checked on its syntax tree before it is run).

MATCALC_FUZZ_INPUTS (default 5000) sets the number of fuzz inputs.
"""

from __future__ import annotations

import ast
import io
import os
import random
import re
import signal
import tokenize
import traceback
from contextlib import contextmanager

import numpy as np
import pytest

import matcalc
from matcalc import MatcalcError, NameResolutionError, ParseError, ShapeError
from matcalc.targets.numpy import load
from matcalc.checks.verify import draw, least_sizes

from conftest import EXAMPLES, run_cli
from strategies import RandomSource, build_problem

FUZZ_INPUTS = int(os.environ.get("MATCALC_FUZZ_INPUTS", "5000"))
TIME_LIMIT = 10.0   # seconds for one input, end to end


# ------------------------------------------------------------- helpers ---

class TooSlow(BaseException):
    """Raised by the timer (a BaseException, so no `except Exception` in
    the code under test swallows it)."""


@contextmanager
def time_limit(seconds: float):
    if not hasattr(signal, "setitimer"):      # no SIGALRM (Windows): unbounded
        yield
        return

    def expire(signum, frame):
        raise TooSlow(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_clear_message(err: MatcalcError, source: str | None = None):
    """str(err) is `[file:]line:col: message`, then the source line and a
    caret under the column; or the message alone where there is no place."""
    text = str(err)
    lines = text.splitlines()
    assert lines and lines[0].strip(), f"empty message: {text!r}"
    assert err.message and "\n" not in err.message, f"message has a newline: {err.message!r}"
    assert err.message in lines[0]
    assert "Traceback" not in text
    if err.line is not None and err.source is not None and \
            1 <= err.line <= len(err.source.splitlines()):
        assert len(lines) == 3, text
        assert lines[0].split(": ", 1)[0].endswith(f"{err.line}:{err.column}"), lines[0]
        assert lines[2].strip() == "^", text
        line = err.source.splitlines()[err.line - 1].expandtabs(1)
        if len(line) <= 100:
            assert len(lines[2]) == 4 + err.column, text
        elif err.column <= len(line):  # a long line is shown around the caret
            assert lines[1][len(lines[2]) - 1] == line[err.column - 1], text
    else:
        assert len(lines) == 1, text


def pipeline(text: str, run: bool = True):
    """Everything matcalc does with a problem: parse, derive, print (text,
    LaTeX, the problem), generate, load and (with `run`) execute the module
    once at random inputs drawn in the problem's domains."""
    p = matcalc.parse(text, "fuzz.mc")
    g = matcalc.grad(p)
    str(g), g.latex(), str(p), p._repr_latex_()
    source = matcalc.codegen(p)
    assert_safe_module(source, p)
    module = load(source, p.output_name)
    if not run:
        return module
    least = least_sizes(p)  # a fixed index (b[9]) needs that many entries
    dims = {name: max(2 + k % 3, least.get(name, 1)) for k, name in enumerate(p.dims)}
    for v in p.variables.values():    # a literal dimension of 10**9 is the user's choice
        size = np.prod([float(d.subs({p.dims[k]: n for k, n in dims.items()}))
                        for d in v.shape])
        if size > 1e5:
            return module
    values = draw(p, dims, np.random.default_rng(0))
    with np.errstate(all="ignore"):
        try:
            value, cache = module.forward(*(values[n] for n in module.INPUTS))
            dout = np.ones(np.shape(value)) if np.ndim(value) else None
            module.backward(cache, dout)
        except np.linalg.LinAlgError:
            pass     # a singular matrix at these inputs: the user's function, not matcalc
    return module


# Strings matcalc's own helpers contain (einsum subscripts).
HELPER_STRINGS = {node.value for helper in matcalc.targets.numpy_forms.HELPERS.values()
                  for node in ast.walk(ast.parse(helper))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  } | set(matcalc.passes.lowering.SQUARES.values()) | {matcalc.passes.lowering.TRACE_OF_PRODUCT} | {
                  node.value for node in ast.walk(ast.parse(matcalc.targets.guards.TEMPLATE))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)}

# The only names generated code may use without defining them.
SAFE_BUILTINS = {"tuple", "dict", "zip", "TypeError", "len", "range", "min",
                 "type", "float", "int", "ValueError", "AttributeError", "IndexError", "KeyError"}


def _bound_names(tree) -> set[str]:
    """Names the module binds: functions, parameters, assignment targets."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            bound.add(node.name)
            args = node.args
            bound |= {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
            bound |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
    return bound


def _dimension_text(text: str, names: set) -> bool:
    """Whether `text` is a product of declared dimensions and integers
    (`8*E`, an axis the input check names)."""
    return re.fullmatch(r"\w+(\*\w+)*", text) is not None and \
        all(part.isdigit() or part in names for part in text.split("*"))


def _interval_text(text: str, names: set) -> bool:
    """Whether `text` is (a part of) an index bound's interval, as the
    range check of an integer input names it (`[-min(3, V), `, `M + N)`):
    declared names, integers, `min` and arithmetic only."""
    return re.fullmatch(r"[\w +*(),\[\]-]+", text) is not None and \
        all(w.isdigit() or w in names or w == "min" for w in re.findall(r"\w+", text))


def _product_text(text: str, names: set) -> bool:
    """Whether `text` is a part of the check of an axis declared as a
    product of dimensions (`X: axis 1 is 4*E, expected `, `a multiple of `):
    a declared name, an axis number, a dimension text and fixed words."""
    found = re.fullmatch(r"(\w+): axis \d+ is ([\w*]+), expected ", text)
    return text in ("a multiple of ", ", got ") or found is not None and \
        found.group(1) in names and _dimension_text(found.group(2), names)


def assert_safe_module(source: str, problem=None, markers=()):
    """The generated source, read as a syntax tree: it imports only NumPy,
    touches no dunder attribute, calls only its own functions, NumPy and a
    few builtins, and its only strings are docstrings, the declared names
    and backward's error message; no marker of user text appears at all."""
    for marker in markers:
        assert marker not in source, f"user text {marker!r} reached the generated code"
    tree = ast.parse(source)
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    docstrings = set()
    for node in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))]:
        if node.body and isinstance(node.body[0], ast.Expr) and \
                isinstance(node.body[0].value, ast.Constant):
            docstrings.add(id(node.body[0].value))
    names = set(problem.variables) | set(problem.dims) if problem is not None else set()
    bound = _bound_names(tree)
    free = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Load)} - bound - {"np"}
    assert free <= SAFE_BUILTINS, f"generated code uses {sorted(free - SAFE_BUILTINS)}"
    assert not bound & (SAFE_BUILTINS | {"np"}), \
        f"generated code rebinds {sorted(bound & (SAFE_BUILTINS | {'np'}))}"
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert isinstance(node, ast.Import) and [(a.name, a.asname) for a in node.names] \
                == [("numpy", "np")], ast.unparse(node)
        elif isinstance(node, ast.Attribute):
            assert not node.attr.startswith("__"), ast.unparse(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            # plain calls: the module's own functions and a few builtins
            # (methods and np.* are attributes, checked above)
            assert node.func.id in defined | SAFE_BUILTINS, \
                f"generated code calls {ast.unparse(node)}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            assert node.value in names | HELPER_STRINGS or _dimension_text(node.value, names) \
                or _interval_text(node.value, names) or _product_text(node.value, names) \
                or node.value.startswith("backward needs dout"), \
                f"string {node.value!r} in generated code"
        elif isinstance(node, (ast.Lambda, ast.Global, ast.Nonlocal, ast.ClassDef,
                               ast.AsyncFunctionDef, ast.Await, ast.Yield)):
            raise AssertionError(f"unexpected {type(node).__name__} in generated code")
    # comments are matcalc's own: `# name = formula` or wrapped formula lines
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            for marker in markers:
                assert marker not in token.string


# ------------------------------------------------------------------ corpus ---

# (id, source, class, line, column, fragments of the message). None of these
# repeats tests/test_errors.py; line and column are 1-based.
CORPUS = [
    # syntax
    ("operator-at-end-of-line", "x: N\nf = sum(x) +\n", ParseError, 2, 13,
     ["unexpected end of line", "expected an expression"]),
    ("matmul-at-end-of-line", "x: N\nf = sum(x) @\n", ParseError, 2, 13, ["end of line"]),
    ("power-of-power-operator", "x: N\nf = sum(x) ** ** 2\n", ParseError, 2, 15,
     ["unexpected '**'"]),
    ("statement-starts-with-equals", "x: N\n= sum(x)\n", ParseError, 2, 1, ["unexpected '='"]),
    ("declaration-ends-in-x", "x: N x\nf = sum(x)\n", ParseError, 1, 7,
     ["unexpected end of line", "a name or an integer"]),
    ("fractional-dimension", "x: 2.5\nf = sum(x)\n", ParseError, 1, 5, ["unexpected '.5'"]),
    ("concatenate-axis-none", "A: N x D\nf = sum(concatenate((A, A), axis=None))\n", ShapeError,
     2, 9, ["concatenate takes one axis, an integer, got None"]),
    ("stack-axis-none", "x: N\nf = sum(stack((x, x), axis=None))\n", ShapeError, 2, 9,
     ["stack takes one axis"]),
    ("two-domain-words", "t: N int positive\nf = sum(t)\n", ParseError, 1, 10,
     ["unexpected 'positive'", "at most one structure"]),
    ("axes-by-position", "A: N x D\nf = sum(A, 0, 1)\n", ParseError, 2, 5,
     ["several axes are one tuple: write sum(..., axis=(0, 1))"]),
    ("diff-of-a-vector", "x: N\nf = sum(abs(diff(x)))\n", NameResolutionError, 2, 13,
     ["unknown function 'diff'", "x[1:] - x[:-1]"]),
    ("multiple-of-a-dimension", "H = 3\nW: D x 4H\nf = sum(W)\n", ParseError, 2, 9,
     ["unexpected 'H'", "F = 4 * H"]),
    ("x-and-star-in-a-shape", "H = 3\nW: D x 4 * H\nf = sum(W)\n", ShapeError, 2, 10,
     ["mixes x and *", "F = 4 * H, then D x F"]),
    ("negative-dimension", "x: -2\nf = sum(x)\n", ParseError, 1, 4, ["unexpected '-'"]),
    ("number-juxtaposed-with-name", "x: N\nf = 2x\n", ParseError, 2, 6, ["unexpected 'x'"]),
    ("hexadecimal-number", "x: N\nf = 0x10 * sum(x)\n", ParseError, 2, 6,
     ["unexpected 'x10'"]),
    ("underscore-in-number", "x: N\nf = 1_000 * sum(x)\n", ParseError, 2, 6,
     ["unexpected '_000'"]),
    ("complex-number", "x: N\nf = 1e5j * sum(x)\n", ParseError, 2, 8, ["unexpected 'j'"]),
    ("double-dot", "x: N\nf = x..T\n", ParseError, 2, 7, ["unexpected '.'"]),
    ("dot-at-end-of-line", "x: N\nf = x.\n", ParseError, 2, 7, ["end of line", "a name"]),
    ("trailing-comma", "x: N\nf = sum(x,)\n", ParseError, 2, 11, ["unexpected ')'"]),
    ("mismatched-bracket", "x: N\nf = sum(x]\n", ParseError, 2, 10, ["unexpected ']'"]),
    ("unclosed-index", "x: N\nf = x[:, None\n", ParseError, 2, 14,
     ["unexpected end of input", "']'"]),
    ("several-closing-brackets", "x: N\nf = sum(x))) \n", ParseError, 2, 11,
     ["unexpected ')'"]),
    ("continuation-swallows-next-line", "x: N\nf = (x\ny = 2\n", ParseError, 3, 1,
     ["unexpected 'y'"]),
    ("double-quoted-string", 'x: N\nf = "x"\n', ParseError, 2, 5,
     ["a string is only a keyword value"]),
    ("single-quoted-string", "x: N\nf = sum(x) + 'import os'\n", ParseError, 2, 14,
     ["a string is only a keyword value"]),
    ("backtick", "x: N\nf = `x`\n", ParseError, 2, 5, ["unexpected character '`'"]),
    ("nul-byte", "x: N\nf = sum(x)\x00\n", ParseError, 2, 11,
     ["unexpected character '\\x00'"]),
    ("python-lambda", "x: N\nf = lambda: x\n", ParseError, 2, 11, ["unexpected ':'"]),
    ("python-conditional", "x: N\nf = sum(x) if x else x\n", ParseError, 2, 12,
     ["unexpected 'if'"]),
    ("python-import-call", "x: N\nf = __import__('os')\n", NameResolutionError, 2, 5,
     ["unknown function '__import__'"]),
    ("dunder-attribute", "x: N\nf = sum(x.__class__)\n", ParseError, 2, 11,
     ["unknown attribute '.__class__'", "'.T'"]),
    ("wrt-without-names", "x: N\nf = sum(x)\nwrt\n", ParseError, 3, 4,
     ["end of line", "a name"]),
    ("wrt-names-without-comma", "x: N\nwrt x y\nf = sum(x)\n", ParseError, 2, 7,
     ["unexpected 'y'"]),
    ("wrt-as-a-variable", "wrt: N\n", ParseError, 1, 4, ["unexpected ':'"]),
    ("only-separators", "   ;  ;\n", ParseError, None, None, ["empty problem"]),
    # unknown names and functions
    ("unknown-function-no-suggestion", "x: N\nf = frobnicate(x)\n", NameResolutionError, 2, 5,
     ["unknown function 'frobnicate'"]),
    ("variable-called-as-function", "x: N\nf = x(x)\n", NameResolutionError, 2, 5,
     ["unknown function 'x'"]),
    ("dimension-called-as-function", "x: N\nf = N(x)\n", NameResolutionError, 2, 5,
     ["unknown function 'N'"]),
    ("undeclared-dimension-in-ones", "x: N\nf = sum(ones(M) * x)\n", NameResolutionError,
     2, 14, ["unknown name 'M'"]),
    ("dimension-of-no-variable", "x: N\nf = sum(ones(N, D) * x)\n", NameResolutionError,
     2, 17, ["unknown name 'D'"]),
    ("intermediate-used-before-defined", "x: N\nf = sum(h)\nh = x\n", NameResolutionError,
     2, 9, ["unknown name 'h'"]),
    ("intermediate-defined-by-itself", "x: N\nh = h + x\n", NameResolutionError, 2, 5,
     ["unknown name 'h'"]),
    ("python-true", "x: N\nf = True * sum(x)\n", NameResolutionError, 2, 5,
     ["unknown name 'True'"]),
    ("wrt-a-dimension", "x: N\nf = sum(x)\nwrt N\n", NameResolutionError, 3, 5, ["wrt 'N'"]),
    ("wrt-the-function", "x: N\nf = sum(x)\nwrt f\n", NameResolutionError, 3, 5,
     ["wrt 'f'", "intermediate"]),
    ("wrt-None", "x: N\nf = sum(x)\nwrt None\n", NameResolutionError, 3, 5, ["wrt 'None'"]),
    # duplicate declarations
    ("intermediate-named-like-variable", "x: N\nx = exp(x)\n", NameResolutionError, 2, 1,
     ["'x' is already declared (line 1)"]),
    ("intermediate-named-like-dimension", "x: N\nf = sum(x)\nN = 3\n", NameResolutionError,
     3, 1, ["'N' is already declared as a dimension"]),
    ("variable-used-as-dimension", "x: N\ny: x\nf = sum(x)\n", NameResolutionError, 2, 4,
     ["'x' is a variable, not a dimension"]),
    # wrong arity and keywords
    ("maximum-one-argument", "x: N\ny: N\nf = sum(maximum(x))\n", ParseError, 3, 9,
     ["maximum() takes 2 arguments, got 1"]),
    ("minimum-three-arguments", "x: N\nf = sum(minimum(x, x, x))\n", ParseError, 2, 9,
     ["minimum() takes 2 arguments, got 3"]),
    ("solve-one-argument", "A: N x N\nf = solve(A)\n", ParseError, 2, 5,
     ["solve() takes 2 arguments, got 1"]),
    ("kron-one-argument", "A: N x N\nf = sum(kron(A))\n", ParseError, 2, 9,
     ["kron() takes 2 arguments, got 1"]),
    ("trace-two-arguments", "A: N x N\nf = trace(A, A)\n", ParseError, 2, 5,
     ["trace() takes 1 argument, got 2"]),
    ("eye-three-dimensions", "x: N\nf = sum(eye(N, N, N) * x)\n", ParseError, 2, 9,
     ["eye() takes 1 or 2 dimensions, got 3"]),
    ("ones-no-dimension", "x: N\nf = sum(ones() * x)\n", ParseError, 2, 9,
     ["ones() takes at least 1 dimension, got 0"]),
    ("softmax-keyword-dim", "x: N\nf = sum(softmax(x, dim=0))\n", ParseError, 2, 9,
     ["softmax() has no keyword 'dim'", "axis"]),
    ("axis-is-a-variable", "x: N\nf = sum(x, axis=x)\n", ParseError, 2, 5,
     ["axis must be None or an integer"]),
    ("axis-fractional", "X: N x D\nf = sum(sum(X, axis=0.5))\n", ParseError, 2, 9,
     ["axis must be None or an integer"]),
    ("axis-is-a-dimension", "x: N\nf = mean(x, axis=N)\n", ParseError, 2, 5,
     ["axis must be None or an integer"]),
    # shapes, broadcasting and squareness with symbolic dimensions
    ("solve-non-square", "A: N x D\nf = sum(solve(A, A))\n", ShapeError, 2, 9,
     ["solve needs a square matrix", "N x D"]),
    ("solve-wrong-rows", "A: N x N\nb: D\nf = sum(solve(A, b))\n", ShapeError, 3, 9,
     ["needs B with N rows", "got D"]),
    ("outer-then-matmul", "x: N\ny: D\nf = sum(outer(x, y) @ x)\n", ShapeError, 3, 21,
     ["'@'", "outer(x, y) is N x D", "x is N"]),
    ("matmul-of-a-scalar-result", "x: N\ny: N\nf = x @ y @ y\n", ShapeError, 3, 11,
     ["'@'", "scalars"]),
    ("operand-spanning-lines", "X: N x D\nf = sum((X +\n  X) @ X)\n", ShapeError, 3, 6,
     ["shape mismatch in '@'", "(X + X) is N x D", "X is N x D"]),
    ("chained-matmul-mismatch", "X: N x D\nf = sum(X @ X.T @ X.T)\n", ShapeError, 2, 17,
     ["X @ X.T is N x N", "X.T is D x N"]),
    ("eye-of-another-dimension", "x: D\ny: N\nf = sum(eye(N) @ x)\n", ShapeError, 3, 16,
     ["'@'", "eye(N) is N x N", "x is D"]),
    ("diag-of-non-square", "X: N x D\nf = sum(diag(X))\n", ShapeError, 2, 9,
     ["diag needs a square matrix", "N x D"]),
    ("kron-of-a-vector", "X: N x D\nv: N\nf = sum(kron(X, v))\n", ShapeError, 3, 9,
     ["kron needs two matrices", "N x D and N"]),
    ("maximum-transposed-shapes", "X: N x D\nY: D x N\nf = sum(maximum(X, Y))\n",
     ShapeError, 3, 9, ["do not broadcast", "N x D and D x N"]),
    ("columns-of-different-length", "x: N\ny: D\nf = sum(x[:, None] * y[:, None])\n",
     ShapeError, 3, 20, ["'*'", "x[:, None] is N x 1", "y[:, None] is D x 1"]),
    ("power-of-transposed-shapes", "X: N x D\nY: D x N\nf = sum(X ** Y)\n", ShapeError,
     3, 11, ["'**'", "X is N x D", "Y is D x N"]),
    ("column-of-a-scalar", "a: scalar\nf = sum(a[:, None])\n", ShapeError, 2, 9,
     ["too many indices", "scalar"]),
    ("symmetric-non-square", "S: N x D symmetric\nf = sum(S)\n", ShapeError, 1, 10,
     ["must be square"]),
    ("spd-vector", "S: N spd\nf = sum(S)\n", ShapeError, 1, 6, ["must be square"]),
    ("mean-axis-of-a-vector", "x: N\nf = mean(x, axis=1)\n", ShapeError, 2, 5,
     ["axis 1 is out of range", "N"]),
    ("softmax-axis-out-of-range", "X: N x D\nf = sum(softmax(X, axis=7))\n", ShapeError, 2, 9,
     ["axis 7 is out of range", "N x D"]),
    ("det-of-product-then-logdet", "X: N x D\nf = det(X @ X.T) + logdet(X)\n", ShapeError,
     2, 20, ["logdet needs a square matrix", "N x D"]),
    ("inv-of-transpose", "X: N x D\nf = sum(inv(X.T))\n", ShapeError, 2, 9,
     ["inv needs a square matrix", "D x N"]),
    ("unkron-of-non-multiples", "X: N x D\nY: D x N\nf = sum(unkron_left(X, Y))\n",
     ShapeError, 3, 9, ["unkron"]),
    ("unkron-right-of-non-multiples", "X: N x D\nY: K x K\nf = sum(unkron_right(X, Y))\n",
     ShapeError, 3, 9, ["unkron"]),
    # constants that are not finite
    ("division-by-float-zero", "x: N\nf = sum(x) / 0.0\n", MatcalcError, 2, 12, ["division"]),
    ("zero-to-a-negative-power", "x: N\nf = 0 ** -1 * sum(x)\n", MatcalcError, 2, 7, []),
    ("number-too-large", "x: N\nf = 1e999 * sum(x)\n", MatcalcError, 2, 5, ["1e999"]),
    ("exponent-too-large", "x: N\nf = sum(x ** 1e400)\n", MatcalcError, 2, 14, ["1e400"]),
    ("product-overflows", "x: N\nf = 1e308 * 10 * sum(x)\n", MatcalcError, 2, 11, []),
    ("power-overflows", "x: N\nf = 2 ** 5000 * sum(x)\n", MatcalcError, 2, 7, []),
    ("quotient-overflows", "x: N\nf = sum(x / (1e-200 * 1e-200))\n", MatcalcError, 2, 11, []),
]


def _corpus_error(source) -> MatcalcError:
    """The error matcalc gives for `source`: parse, then derive and generate
    (a constant that is not finite may only show there)."""
    with time_limit(TIME_LIMIT):
        try:
            pipeline(source, run=False)
        except MatcalcError as err:
            return err
    raise AssertionError(f"no error for {source!r}")


def test_corpus_is_large_and_new():
    from test_errors import CASES
    assert len(CORPUS) >= 40
    assert len({c[0] for c in CORPUS}) == len(CORPUS)
    old = {c[1] for c in CASES}
    assert not old & {c[1] for c in CORPUS}, "a case repeats tests/test_errors.py"


@pytest.mark.parametrize("source, cls, line, column, fragments", [c[1:] for c in CORPUS],
                         ids=[c[0] for c in CORPUS])
def test_corpus(source, cls, line, column, fragments):
    err = _corpus_error(source)
    assert isinstance(err, cls), f"{type(err).__name__}: {err}"
    assert (err.line, err.column) == (line, column), str(err)
    assert_clear_message(err, source)
    head = str(err).splitlines()[0]
    for fragment in fragments:
        assert fragment in head, f"{fragment!r} not in {head!r}"


# A sample of the corpus through the command line: exit 2, one message with
# the place, the source line and a caret; nothing on stdout, no traceback.
CLI_SAMPLE = ["operator-at-end-of-line", "mismatched-bracket", "nul-byte", "python-import-call",
              "unknown-function-no-suggestion", "wrt-a-dimension",
              "intermediate-named-like-variable", "maximum-one-argument",
              "solve-wrong-rows", "maximum-transposed-shapes", "unkron-of-non-multiples",
              "division-by-float-zero", "number-too-large"]


@pytest.mark.parametrize("case", CLI_SAMPLE)
@pytest.mark.parametrize("command", ["grad"])
def test_corpus_through_the_cli(case, command, tmp_path):
    _, source, cls, line, column, fragments = next(c for c in CORPUS if c[0] == case)
    path = tmp_path / "bad.mc"
    path.write_text(source, "utf-8", newline="")
    proc = run_cli(command, path)
    stderr = proc.stderr.decode("utf-8")
    assert proc.returncode == 2, stderr
    assert proc.stdout == b""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert lines[0].startswith(f"matcalc: {path}:{line}:{column}: "), stderr
    assert len(lines) == 3 and lines[2].strip() == "^", stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", ["codegen", "check", "hessian", "jacobian", "hvp"])
def test_every_command_rejects_bad_input_with_exit_2(command, tmp_path):
    path = tmp_path / "bad.mc"
    path.write_text("x: N\ny: D\nf = sum(x[:, None] * y[:, None])\n", "utf-8")
    proc = run_cli(command, path, *(["--wrt", "x"] if command == "hessian" else []))
    stderr = proc.stderr.decode("utf-8")
    assert proc.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.startswith(f"matcalc: {path}:3:20: shape mismatch in '*'"), stderr


@pytest.mark.parametrize("data, fragment", [
    (b"x: N\nf = sum(x) # \xff\n", "UTF-8"),
    (b"\xfe\xff\x00x\x00:\x00 \x00N", "UTF-8"),           # UTF-16 text
    (b"x: N\nf = sum(x\xc3)\n", "UTF-8"),                    # a truncated sequence
])
def test_non_utf8_bytes_library(data, fragment):
    """parse() of bytes that are not UTF-8: a MatcalcError that says so
    (never a TypeError or UnicodeDecodeError)."""
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(data)
    assert fragment in str(info.value)
    assert_clear_message(info.value)


@pytest.mark.parametrize("data", [b"x: N\nf = sum(x) # \xff\n", b"\x80\x81\x82",
                                  b"x: N\nf = sum(x\xc3)\n"])
def test_non_utf8_bytes_cli(data, tmp_path):
    path = tmp_path / "bytes.mc"
    path.write_bytes(data)
    proc = run_cli("grad", path)
    stderr = proc.stderr.decode("utf-8")
    assert proc.returncode == 2 and "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1 and "not UTF-8" in stderr, stderr


def test_bytes_that_are_utf8_work_or_say_text_is_needed():
    try:
        p = matcalc.parse(b"x: N\nf = sum(x ** 2)\n")
    except MatcalcError as err:
        assert_clear_message(err)
    else:
        assert str(p).splitlines()[1] == "f = sum(x ** 2)", str(p)


@pytest.mark.parametrize("value", [42, None, ["x: N", "f = sum(x)"]])
def test_parse_of_something_else_is_a_matcalc_error(value):
    with pytest.raises(MatcalcError):
        matcalc.parse(value)


def test_check_with_a_dimension_too_large_is_a_matcalc_error():
    # the problem is fine; arrays of 10**23 entries are not
    p = matcalc.parse("x: 99999999999999999999999\nf = sum(x)\n")
    with pytest.raises(MatcalcError):
        matcalc.check(p)


# -------------------------------------------------------------------- fuzz ---

TOKENS = ["(", ")", "[", "]", ",", ":", ";", "\n", " ", "=", "+", "-", "*", "/", "@", "**",
          "'", ".T", ".", "[:, None]", "[None, :]", "x", "X", "W", "N", "D", "1", "0", "2.5",
          "1e-3", "1e999", "0.0", "None", "wrt", "scalar", "spd", "symmetric", "×", "#",
          "sum(", "exp(", "log(", "inv(", "det(", "logdet(", "solve(", "kron(", "outer(",
          "softmax(", "logsumexp(", "maximum(", "diag(", "trace(", "eye(N)", "ones(N, D)",
          "zeros(D)", "axis=0", "axis=1", "axis=None", "axis=-1", "unkron_left(",
          "lambda", "__import__", "np", "α", "\\\n", "\t", "\r\n", "\x00", "\ufeff"]

UNICODE = "αβγΣ∂ᵀ×·⊙𝐱ｘℕ²\u200b\u2028\ufeff\udcff\x0c"


def _seeds() -> list[bytes]:
    texts = [p.read_text("utf-8") for p in sorted(EXAMPLES.glob("*.mc"))]
    texts += [build_problem(RandomSource(seed)).text for seed in range(30)]
    texts += [c[1] for c in CORPUS]
    return [t.encode("utf-8") for t in texts]


# Tokens of one class replace each other: mutations that keep a problem
# well-formed more often, so that derivation and code generation are reached.
SWAPS = [
    ["exp", "log", "sqrt", "abs", "sin", "cos", "tan", "tanh", "sinh", "cosh", "log1p", "expm1",
     "square", "arcsin", "arccos", "arctan", "sigmoid", "relu", "softplus", "step", "sign",
     "sum", "mean", "softmax", "logsumexp", "trace", "tr", "det", "logdet", "inv", "diag",
     "norm", "norm1"],
    ["maximum", "minimum", "kron", "outer", "solve", "unkron_left", "unkron_right"],
    [" + ", " - ", " * ", " / ", " @ ", " ** "],
    ["0", "0.0", "1", "2", "0.5", "1e999", "1e-999", "1e308", "1e-320", "2 ** 5000", "(N - N)"],
    ["axis=0", "axis=1", "axis=-1", "axis=-2", "axis=None", "axis=2"],
    [".T", "'", "[:, None]", "[None, :]", ""],
    ["N", "D", "K", "H", "O", "1", "2"],
]


def _swap(data: bytes, rng: random.Random) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    group = rng.choice(SWAPS)
    pattern = "|".join(re.escape(t) if not t.isidentifier() else rf"\b{t}\b"
                       for t in group if t)
    spots = [m.span() for m in re.finditer(pattern, text)]
    if not spots:
        return data
    a, b = rng.choice(spots)
    return (text[:a] + rng.choice(group) + text[b:]).encode("utf-8", "surrogateescape")


def _mutate(data: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    kind = rng.randrange(14)
    n = len(data)
    if kind >= 11:
        return _swap(data, rng)
    if kind == 0 and n:                                   # byte flips
        data = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(n)] = rng.randrange(256)
        return bytes(data)
    if kind == 1 and n:                                   # bit flip
        data = bytearray(data)
        i = rng.randrange(n)
        data[i] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == 2:                                         # insert a token
        i = rng.randint(0, n)
        return data[:i] + rng.choice(TOKENS).encode("utf-8", "surrogatepass") + data[i:]
    if kind == 3 and n:                                   # delete a span
        i = rng.randrange(n)
        return data[:i] + data[i + rng.randint(1, 8):]
    if kind == 4:                                         # truncate
        return data[:rng.randint(0, n)]
    if kind == 5:                                         # splice two problems
        other = rng.choice(seeds)
        return data[:rng.randint(0, n)] + other[rng.randint(0, len(other)):]
    if kind == 6:                                         # shuffle or repeat lines
        lines = data.split(b"\n")
        if rng.random() < 0.5:
            rng.shuffle(lines)
        else:
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
        return b"\n".join(lines)
    if kind == 7:                                         # random printable text
        return "".join(rng.choice("abxXNDW0123456789 +-*/@()[],:;=.'\n#")
                       for _ in range(rng.randint(0, 120))).encode()
    if kind == 8:                                         # token soup after declarations
        return b"X: N x D\nW: D x N\nx: N\n" + "".join(
            rng.choice(TOKENS) for _ in range(rng.randint(1, 40))).encode("utf-8",
                                                                          "surrogatepass")
    if kind == 9:                                         # random Unicode
        i = rng.randint(0, n)
        junk = "".join(rng.choice(UNICODE) for _ in range(rng.randint(1, 5)))
        return data[:i] + junk.encode("utf-8", "surrogatepass") + data[i:]
    # replace a name or number by a token
    text = data.decode("utf-8", "surrogateescape")
    words = [m.span() for m in re.finditer(r"\w+", text)]
    if not words:
        return data
    a, b = rng.choice(words)
    return (text[:a] + rng.choice(TOKENS) + text[b:]).encode("utf-8", "surrogateescape")


def fuzz_inputs(count: int, seed: int = 20251123) -> list[bytes]:
    rng = random.Random(seed)
    seeds = _seeds()
    out = []
    while len(out) < count:
        data = rng.choice(seeds)
        for _ in range(rng.choice([1, 1, 1, 2, 3, 6])):
            data = _mutate(data, seeds, rng)
        out.append(data)
    return out


def outcome(data: bytes) -> str | None:
    """None for success or a MatcalcError with a clear message; else what
    went wrong, with the traceback's last lines."""
    text = data.decode("utf-8", "surrogateescape")
    try:
        with time_limit(TIME_LIMIT):
            try:
                pipeline(text)
            except MatcalcError as err:
                assert_clear_message(err, text)
    except TooSlow as err:
        return f"hang: {err}"
    except Exception as err:     # noqa: BLE001 - every other exception is a finding
        tb = traceback.format_exception(err)
        return f"{type(err).__name__}: {str(err)[:300]}\n" + "".join(tb[-3:])
    return None


def test_fuzz_inputs_are_deterministic_and_varied():
    a, b = fuzz_inputs(200), fuzz_inputs(200)
    assert a == b
    assert len(set(a)) > 180
    assert any(b"\xff" in x or b"\x80" in x for x in a)   # some are not UTF-8


def test_fuzz():
    """Mutated problems and random text: success or a MatcalcError, within
    the time limit, for every input."""
    failures = []
    successes = 0
    for i, data in enumerate(fuzz_inputs(FUZZ_INPUTS)):
        problem = outcome(data)
        if problem is None:
            successes += 1
        else:
            failures.append(f"input {i}: {data!r}\n{problem}")
    assert successes > FUZZ_INPUTS // 20, "the fuzz should still reach valid problems"
    assert not failures, f"{len(failures)} of {FUZZ_INPUTS} inputs failed:\n\n" + \
        "\n\n".join(failures[:8])


def test_fuzz_through_the_cli(tmp_path):
    """A few mutated inputs through the command line: exit 0 or 2, never a
    traceback."""
    inputs = fuzz_inputs(400, seed=7)[::40]
    for i, data in enumerate(inputs):
        path = tmp_path / f"fuzz{i}.mc"
        path.write_bytes(data)
        proc = run_cli("grad", path)
        stderr = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode in (0, 2), f"{data!r}: exit {proc.returncode}\n{stderr}"
        assert "Traceback" not in stderr, f"{data!r}\n{stderr}"
        if proc.returncode == 2:
            assert stderr.startswith("matcalc: ") and len(stderr.splitlines()) <= 3, stderr


# ------------------------------------------------------- deep and wide input ---

def _works(text: str, check_value=None):
    """End to end within a time bound, with no error; then `check_value`."""
    with time_limit(60):
        module = pipeline(text, run=False)
        if check_value is not None:
            check_value(module)


def _refused(text: str, what: str):
    """Refused at once with a clear ParseError saying `what`."""
    with time_limit(10), pytest.raises(ParseError) as info:
        pipeline(text, run=False)
    assert what in info.value.message, str(info.value)
    assert_clear_message(info.value, text)


def _sum_of_sines(x):
    """A check that a module's value and gradient at x are sum(sin(x)) and cos(x)."""
    def value(module):
        v, g = module.value_and_grad(x=x)
        np.testing.assert_allclose(v, np.sum(np.sin(x)))
        np.testing.assert_allclose(g["x"], np.cos(x))
    return value


def test_input_at_the_stated_limits_works_and_beyond_is_refused():
    # docs/language.md: brackets nest at most 20,000 deep, input is at most 50,000 tokens
    x = np.array([0.3, -0.2, 0.5])
    value = _sum_of_sines(x)
    deep = "x: N\nf = sum(sin(" + "(" * 19998 + "x" + ")" * 19998 + "))\n"
    _works(deep, value)
    _refused(deep.replace("(x)", "((x))"), "too deep")
    terms = "x: N\nf = sum(" + "x + " * 24994       # 50,000 tokens with "-x)\n"

    def total(module):
        v, g = module.value_and_grad(x=x)
        np.testing.assert_allclose(v, 24993 * np.sum(x))
        np.testing.assert_allclose(g["x"], np.full(3, 24993.0))
    _works(terms + "-x)\n", total)
    _refused(terms + "(x))\n", "too long")


def test_five_thousand_deep_sines_end_to_end():
    # docs/testing.md: a 5,000-deep sin(sin(…)) works end to end
    x = np.array([0.3, -0.2])

    def value(module):
        v, g = module.value_and_grad(x=x)
        y, d = x, np.ones_like(x)
        for _ in range(5000):
            d = d * np.cos(y)
            y = np.sin(y)
        np.testing.assert_allclose(v, np.sum(y))
        np.testing.assert_allclose(g["x"], d)
    _works("x: N\nf = sum(" + "sin(" * 5000 + "x" + ")" * 5000 + ")\n", value)


def test_ten_thousand_nested_parentheses_end_to_end():
    x = np.array([0.3, -0.2, 0.5])
    value = _sum_of_sines(x)
    _works("x: N\nf = sum(sin(" + "(" * 10000 + "x" + ")" * 10000 + "))\n", value)


def test_ten_thousand_nested_negations():
    x = np.array([0.3, -0.2])

    def value(module):
        v, g = module.value_and_grad(x=x)
        np.testing.assert_allclose(v, np.sum(x ** 2))
    _works("x: N\nf = sum((" + "-" * 10000 + "x) ** 2)\n", value)
    _works("x: N\nf = sum((" + "- " * 10001 + "x) ** 2)\n")


def test_ten_thousand_nested_transposes_and_reductions():
    X = np.arange(6.0).reshape(2, 3) / 10

    def value(module):
        v, g = module.value_and_grad(X=X)
        np.testing.assert_allclose(v, np.sum(X ** 2))
        np.testing.assert_allclose(g["X"], 2 * X)
    _works("X: N x D\nf = sum(X" + ".T" * 10000 + " ** 2)\n", value)
    _works("X: N x D\nf = sum(X" + "'" * 10000 + " ** 2)\n", value)
    _works("X: N x D\nf = sum(" + "sum(" * 10000 + "X ** 2" + ")" * 10000 + ")\n", value)


def test_deep_chain_of_functions_end_to_end():
    # (tests/test_errors.py parses 10,000 tanh and runs 2,000 sin)
    x = np.array([0.3, -0.2])

    def value(module):
        v, g = module.value_and_grad(x=x)
        y, d = x, np.ones_like(x)
        for _ in range(3000):
            d = d * (1 - np.tanh(y) ** 2)
            y = np.tanh(y)
        np.testing.assert_allclose(v, np.sum(y))
        np.testing.assert_allclose(g["x"], d)
    _works("x: N\nf = sum(" + "tanh(" * 3000 + "x" + ")" * 3000 + ")\n", value)


def test_deep_power_tower():
    _works("x: scalar\nf = " + "x ** " * 300 + "x\n")


def test_thousand_term_sum_of_distinct_terms_end_to_end():
    terms = [f"exp(x / {k})" for k in range(1, 1001)]
    x = np.array([0.3, -0.2, 0.1])

    def value(module):
        v, g = module.value_and_grad(x=x)
        ks = np.arange(1, 1001)[:, None]
        np.testing.assert_allclose(v, np.sum(np.exp(x / ks)))
        np.testing.assert_allclose(g["x"], np.sum(np.exp(x / ks) / ks, axis=0))
    _works("x: N\nf = sum(" + " + ".join(terms) + ")\n", value)


def _nodes_built(text: str, monkeypatch) -> int:
    """How many nodes parse, grad and codegen ask for (each builder call
    asks for one): the work, free of the machine's speed."""
    from matcalc.ir import expr
    real, count = expr._intern, [0]

    def counting(key, make):
        count[0] += 1
        return real(key, make)
    with monkeypatch.context() as m:
        m.setattr(expr, "_intern", counting)
        matcalc.codegen(matcalc.parse(text))
    return count[0]


@pytest.mark.parametrize("term", ["exp(x / {k})", "sin(v{k})", "x * {k} + y ** {k}"])
def test_regression_long_sums_take_linear_work(term, monkeypatch):
    # each `+` of the parser and each adjoint share of the derivation rebuilt
    # the whole sum so far: a sum of 1,000 terms took a minute, 2,000 four
    def text(n):
        names = ["x", "y"] + [f"v{k}" for k in range(1, n + 1)]
        return "".join(f"{v}: N\n" for v in names) + "f = sum(" + \
            " + ".join(term.format(k=k) for k in range(1, n + 1)) + ")\n"
    small, large = (_nodes_built(text(n), monkeypatch) for n in (200, 800))
    assert large < 4.5 * small, (small, large)


def test_five_hundred_variables_in_one_sum():
    names = [f"v{k}" for k in range(500)]
    text = "".join(f"{n}: N\n" for n in names) + "f = sum(" + " * ".join(names[:2]) + \
        " + " + " + ".join(names) + ")\n"

    def value(module):
        values = {n: np.full(2, 0.5) for n in names}
        v, g = module.value_and_grad(**values)
        assert len(g) == 500
        np.testing.assert_allclose(g["v499"], np.ones(2))
        np.testing.assert_allclose(g["v0"], np.full(2, 1.5))
    _works(text, value)


def _nodes_visited(text: str, monkeypatch) -> int:
    """How many nodes the rewrites of parse, grad and codegen visit."""
    from matcalc.ir import expr
    real, count = expr.postorder, [0]

    def counting(roots, done=()):
        for node in real(roots, done):
            count[0] += 1
            yield node
    with monkeypatch.context() as m:
        m.setattr(expr, "postorder", counting)
        matcalc.codegen(matcalc.parse(text))
    return count[0]


def test_regression_long_programs_take_linear_work(monkeypatch):
    # each line's names were shared by a rewrite of everything below it:
    # 3,000 lines took 45 s
    def text(n):
        return "x: N\nh0 = x\n" + "".join(f"h{k} = h{k - 1} + x\n" for k in range(1, n)) + \
            f"f = sum(h{n - 1})\n"
    small, large = (_nodes_visited(text(n), monkeypatch) for n in (200, 800))
    assert large < 4.5 * small, (small, large)


def test_three_thousand_statements():
    lines = ["x: N", "h0 = x"] + [f"h{k} = h{k - 1} + x" for k in range(1, 3000)]
    lines.append("f = sum(h2999)")
    x = np.array([0.5, 1.0])

    def value(module):
        v, g = module.value_and_grad(x=x)
        np.testing.assert_allclose(v, 3000 * np.sum(x))
        np.testing.assert_allclose(g["x"], np.full(2, 3000.0))
    _works("\n".join(lines) + "\n", value)


def test_deep_input_through_the_cli(tmp_path):
    path = tmp_path / "deep.mc"
    path.write_text("x: N\nf = sum(" + "(" * 10000 + "x" + ")" * 10000 + ")\n", "utf-8")
    proc = run_cli("codegen", path, timeout=120)
    stderr = proc.stderr.decode("utf-8")
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]


# --------------------------------------------------------- names never code ---

HOSTILE_NAMES = [
    "lambda", "class", "def", "return", "import", "from", "if", "pass", "yield", "await",
    "True", "False", "None_", "match", "case", "type", "_",
    "sum", "exp", "print", "exec", "eval", "compile", "open", "len", "object", "id",
    "__import__", "__builtins__", "__name__", "__doc__", "__file__", "__class__",
    "__init__", "self",
    "np", "numpy", "os", "sys", "subprocess",
    "_v", "inputs", "cache", "dout", "forward", "backward", "value_and_grad", "INPUTS",
    "WRT", "dtype", "grads", "g", "v", "out", "index", "value", "name", "hessian", "hvp",
    "jacobian", "_softmax", "_logsumexp", "_unkron_left", "_unkron_right", "t0", "dx",
    "α", "βeta", "ﬁ", "ｌａｍｂｄａ", "𝐱", "x²", "ℕ", "Ⅻ", "ｎｐ", "ᵀ",
]


def _role_problems(name: str):
    """(text, inputs, expected value, expected gradient by x or name) for
    `name` as a variable, an intermediate, the function and a dimension."""
    x = np.array([0.25, -0.5, 1.0])
    v = {"x": x} if name != "x" else {}
    yield (f"{name}: N\nf = sum(exp({name}) * {name})\n", {name: x},
           np.sum(np.exp(x) * x), (name, np.exp(x) * (1 + x)))
    yield (f"x: N\n{name} = exp(x)\nf = sum({name} * x)\n", v,
           np.sum(np.exp(x) * x), ("x", np.exp(x) * (1 + x)))
    yield (f"x: N\n{name} = sum(exp(x))\n", v, np.sum(np.exp(x)), ("x", np.exp(x)))
    yield (f"x: {name}\nf = sum(exp(x)) / {name}\n", v, np.sum(np.exp(x)) / 3,
           ("x", np.exp(x) / 3))
    yield (f"x: N\n{name}: N\nf = sum(x * {name}) + sum(softmax({name}) * x)\n"
           f"wrt {name}, x\n", {"x": x, name: 2 * x},
           np.sum(x * 2 * x) + np.sum(np.exp(2 * x) / np.sum(np.exp(2 * x)) * x), None)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_make_working_safe_modules(name):
    for text, inputs, want, grad in _role_problems(name):
        p = matcalc.parse(text)
        source = matcalc.codegen(p)
        assert_safe_module(source, p)
        module = load(source, p.output_name)
        assert module.INPUTS == tuple(p.variables)        # the user's names, unmangled
        value, grads = module.value_and_grad(**inputs)
        np.testing.assert_allclose(value, want, err_msg=text)
        if grad is not None:
            np.testing.assert_allclose(grads[grad[0]], grad[1], err_msg=text)
        assert matcalc.check(p).ok, text


def test_names_equal_after_normalisation_stay_distinct():
    text = "x: N\n𝐱: N\nｘ: N\nlambda: N\nｌａｍｂｄａ: N\nf = sum(x * 𝐱 + ｘ * lambda) + " \
           "sum(ｌａｍｂｄａ ** 2)\n"
    p = matcalc.parse(text)
    source = matcalc.codegen(p)
    assert_safe_module(source, p)
    module = load(source, "f")
    rng = np.random.default_rng(0)
    values = {n: rng.standard_normal(3) for n in p.variables}
    value, grads = module.value_and_grad(**values)
    np.testing.assert_allclose(value, np.sum(values["x"] * values["𝐱"] + values["ｘ"]
                                             * values["lambda"]) + np.sum(values["ｌａｍｂｄａ"] ** 2))
    np.testing.assert_allclose(grads["x"], values["𝐱"])
    np.testing.assert_allclose(grads["𝐱"], values["x"])
    np.testing.assert_allclose(grads["ｘ"], values["lambda"])
    np.testing.assert_allclose(grads["lambda"], values["ｘ"])
    np.testing.assert_allclose(grads["ｌａｍｂｄａ"], 2 * values["ｌａｍｂｄａ"])


SMUGGLING = [
    # comments that look like code, docstring ends and string quotes
    ('# """ SMUGGLED\nx: N  # \'\'\' SMUGGLED\nf = sum(x ** 2)  # """; import os  SMUGGLED\n',
     None),
    ("x: N\n# \\\nf = sum(x ** 2)  # SMUGGLED \\N{BULLET} \\x00 \\u2028\n", None),
    ('x: N\nf = sum(x ** 2)\n# ")); __import__("os").system("echo SMUGGLED") #\n', None),
    ("x: N\nf = sum(x ** 2)\n#\u2028SMUGGLED = 1\n", None),
    # code where a name or a string should be
    ("x: N\nf = sum(x) + __import__('os').system('echo SMUGGLED')\n", ParseError),
    ("x: N\nf = sum(x); import os\n", ParseError),
    ("x: N\nf = sum(x)\nexec('SMUGGLED')\n", NameResolutionError),
    ("x: N\nf = sum(x)\nos.system\n", MatcalcError),
    ('x: N\nf = sum(x) * "SMUGGLED"\n', ParseError),
    ("x: N\nf = sum(x) * 1e999\n", MatcalcError),
    ("x: N\n__import__ = exp(x)\nos = __import__ * 2\nf = sum(os)\n", None),
    ("__builtins__: N\nexec: N\nf = sum(exec * __builtins__)\n", None),
    ("x: N\nf = sum(x)  \\\n  # SMUGGLED\n", None),
]


@pytest.mark.parametrize("text, error", SMUGGLING)
def test_nothing_but_names_and_numbers_reaches_the_code(text, error):
    if error is not None:
        with pytest.raises(error):
            pipeline(text, run=False)
        return
    p = matcalc.parse(text)
    source = matcalc.codegen(p)
    assert_safe_module(source, p, markers=["SMUGGLED", "import os", "system", "'''",
                                           '"""; ', "\\N{", "\u2028"])
    module = load(source, p.output_name)
    rng = np.random.default_rng(0)
    values = {n: rng.standard_normal(3) for n in p.variables}
    module.value_and_grad(**values)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.mc")), ids=lambda p: p.stem)
def test_example_modules_are_safe(path):
    p = matcalc.parse(path.read_text("utf-8"))
    assert_safe_module(matcalc.codegen(p), p)
    extras = {"jacobian": True} if p.output.shape else {"hvp": True, "jacobian": True,
                                                         "hessian": p.wrt[0]}
    assert_safe_module(matcalc.codegen(p, **extras), p)


def test_generated_problem_modules_are_safe():
    for seed in range(60):
        text = build_problem(RandomSource(seed)).text
        try:
            p = matcalc.parse(text)
            source = matcalc.codegen(p)
        except MatcalcError:
            continue
        assert_safe_module(source, p, markers=["note: a comment"])
