"""Language and CLI traps (issue 12, sections 5 and 6): each reproducer gives
a clear MatcalcError that names the fix (or now works), never a silent
misreading, a misleading suggestion, a traceback or a hang."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy

import matcalc
from matcalc import DomainError, MatcalcError, NameResolutionError, ParseError, cli, ops
from matcalc.frontend import hints
from matcalc.frontend.reading import MAX_NAME, MAX_NESTING, MAX_TOKENS
from matcalc.bridges.sympy import from_sympy

from test_fuzz import assert_clear_message, time_limit


def error_of(source: str) -> MatcalcError:
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(source, "t.mc")
    assert_clear_message(info.value, source)
    return info.value


def main(capsys, *args) -> tuple[int, str, str]:
    """The CLI in process: a traceback would be an exception here."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_exit_2(capsys, *args) -> str:
    code, out, err = main(capsys, *args)
    assert code == 2 and out == "" and err.startswith("matcalc: "), (code, out, err)
    return err


# ------------------------------------------------------------------ NxD ---

@pytest.mark.parametrize("dims, matrix", [("NxD", "N x D"), ("Nx3", "N x 3"),
                                          ("D1xD2", "D1 x D2"), ("HxW", "H x W")])
def test_regression_glued_dimensions_are_refused_with_the_fix(dims, matrix):
    # X: NxD declared a vector with one dimension named NxD, while X: 3x4 is
    # a 3 x 4 matrix; the later "X is NxD but W is D x H" read as a matrix
    err = error_of(f"X: {dims}\nf = sum(X)\n")
    assert isinstance(err, ParseError) and (err.line, err.column) == (1, 4)
    assert f"write '{matrix}'" in err.message and "for a vector" in err.message


@pytest.mark.parametrize("name", ["max_len", "Nx", "exp", "nxd", "Dout", "xN", "Xdim"])
def test_dimension_names_with_an_x_are_still_dimensions(name):
    p = matcalc.parse(f"v: {name}\nf = sum(v)\n")
    assert [str(d) for d in p.variables["v"].shape] == [name]


def test_integer_glued_dimensions_stay_a_matrix():
    assert matcalc.parse("X: 3x4\nf = sum(X)\n").variables["X"].shape == (3, 4)


# ------------------------------------------------------- -e and -d places ---

def test_regression_inline_errors_point_into_the_expression(capsys):
    # reported <-e>:2:11, counting the hidden 'f = ' and the -d lines
    err = assert_exit_2(capsys, "grad", "-e", "sum(X ^ 2)", "-d", "X: N x D")
    head, code, caret = err.splitlines()
    assert head.startswith("matcalc: <-e>:1:7: ")
    assert code == "    sum(X ^ 2)" and caret == "    " + " " * 6 + "^"


def test_inline_errors_on_a_later_line_and_at_the_end(capsys):
    err = assert_exit_2(capsys, "grad", "-e", "sum(X\n @ X)", "-d", "X: N x D")
    assert err.splitlines()[:2] == ["matcalc: <-e>:2:2: shape mismatch in '@': X is N x D "
                                    "but X is N x D; the inner sizes D and N differ: X.T @ X fits",
                                    "     @ X)"]
    err = assert_exit_2(capsys, "grad", "-e", "sum(X", "-d", "X: N x D")
    assert err.startswith("matcalc: <-e>:1:6: syntax error: unexpected end of input")


def test_regression_errors_in_a_declaration_name_that_declaration(capsys):
    err = assert_exit_2(capsys, "grad", "-e", "sum(X @ W)", "-d", "X: N x D\n", "-d", "W: D x")
    head, code, caret = err.splitlines()
    assert head.startswith("matcalc: <-d 2>:1:7: syntax error")
    assert code == "    W: D x" and caret == "    " + " " * 6 + "^"


def _problem_error(expr: str, **keywords) -> MatcalcError:
    with pytest.raises(MatcalcError) as info:
        matcalc.problem(expr, **keywords)
    return info.value


def test_regression_problem_errors_point_into_the_expression_given():
    # reported 3:13 over 'f = sum(X @ v)', a line the user never wrote
    err = _problem_error("sum(X @ v)", X="N x D", w="D")
    assert (err.filename, err.line, err.column) == ("<expr>", 1, 9)
    head, code, caret = str(err).splitlines()
    assert head == "<expr>:1:9: unknown name 'v'"
    assert code == "    sum(X @ v)" and caret == "    " + " " * 8 + "^"
    err = _problem_error("sum(X\n @ X)", X="N x D")
    assert (err.line, err.column) == (2, 2) and str(err).splitlines()[1] == "     @ X)"


def test_regression_problem_errors_in_wrt_or_a_shape_name_that_argument():
    err = _problem_error("sum(X @ w)", X="N x D", w="D", wrt="W")
    assert str(err).splitlines()[:2] == ["<wrt>:1:1: wrt 'W': not declared; did you mean "
                                         "'w'?", "    W"]
    err = _problem_error("sum(X @ w)", X="N x D", w="D", wrt=["w", "b"])
    assert (err.filename, err.column) == ("<wrt>", 4) and "wrt 'b'" in err.message
    err = _problem_error("sum(X @ w)", X="N x D", w="D x")
    assert str(err).splitlines() == ["<shape w>:1:4: syntax error: unexpected end of line; "
                                     "expected a name or an integer", "    D x",
                                     "    " + " " * 3 + "^"]
    assert "wrt is empty" in _problem_error("sum(w)", w="D", wrt="").message
    assert "name is the function's name" in _problem_error("sum(w)", w="D", name="1").message


# ------------------------------------------------------------------ hints ---

HINTS = [  # (expression, declarations, the fix named, a wrong suggestion not made)
    ("amax(X @ w)", "X: N x D; w: D", ["max(x, axis=...)", "maximum(a, b)"], "softmax"),
    ("sum(amin(X))", "X: N x D", ["min(x, axis=...)"], "'mean'"),
    ("sum(tensordot(X, X))", "X: N x D", ["einsum(\"ij,jk->ik\", A, B)"], "trace"),
    ("sum(y) / len(y)", "y: N", ["len(y) is N"], "mean"),
    ("sum(X ^ 2)", "X: N x D", ["write ** for a power", ".T"], None),
    ("sum(X^T @ X)", "X: N x D", ["write X.T for the transpose"], None),
    # ^-1 on paper is the inverse, not a reciprocal
    ("trace(A^-1)", "A: N x N", ["** for an elementwise power", "inv(A) for a matrix inverse"],
     None),
    ("trace(A ^ (-1))", "A: N x N", ["inv(A) for a matrix inverse"], None),
    ("trace((A @ A)^-1)", "A: N x N", ["inv(A) for a matrix inverse"], None),
    ("sum(A^-1.5)", "A: N x N", ["write ** for a power"], "inv("),
    ("np.sum(X)", "X: N x D", ["drop the 'np.' prefix", "sum(...)"], None),
    ("torch.sum(X)", "X: N x D", ["drop the 'torch.' prefix"], None),
    ("np.linalg.det(A)", "A: N x N", ["drop the 'np.linalg.' prefix", "det(...)"], None),
    ("sum(X.dot(W))", "X: N x D; W: D x H", ["X @ W"], None),
    # '*' that fails where '@' fits: the product meant
    ("trace(X.T * Y)", "X, Y: N x D", ["for a matrix product write X.T @ Y"], None),
    ("sum(x * A)", "A: M x N; x: M", ["for a matrix product write x @ A"], None),
    ("sum(2 * X * (W + W))", "X: N x D; W: D x H", ["write 2 * X @ (W + W)"], None),
    ("sum(A * x)", "A: M x N; x: M", ["A is M x N but x is M"], "matrix product"),
    ("sum(X * W)", "X: N x D; W: H x K", ["X is N x D but W is H x K"], "matrix product"),
    ("sum(X + Y.T)", "X, Y: N x D", ["shape mismatch in '+'"], "matrix product"),
    ("sum(X.T())", "X: N x D", ["X.T without ()"], None),
    ("sum(X.sum())", "X: N x D", ["sum(X) for X.sum()"], None),
    # a method's hint names a function of the language: pow is none
    ("X.pow(2).sum()", "X: N x D", ["write X ** 2 for X.pow(2)"], "pow(X)"),
    ("sum(X.clamp(0, 1))", "X: N x D", ["write clip(x, lo, hi)"], "clamp(X)"),
    ("sum(X.t() @ X)", "X: N x D", ["write X.T for the transpose"], "t(X)"),
    ("sum(X.flatten())", "X: N x D", ["reshape(x, (-1,))"], "not in the language yet"),
    ("sum(np.cbrt(X))", "X: N x D", ["matcalc has no function 'cbrt'"], "cbrt(...)"),
    ("sum(X.shape)", "X: N x D", ["dimension names"], None),
    ("sum(X[0, 0, 0])", "X: N x D", ["too many indices: 3 for a N x D array"], None),
    ("sum(X[:, 0.5])", "X: N x D", ["an index is an integer"], None),
    ("sum(softmax(X, axis=1, keepdims=True))", "X: N x D",
     ["no keyword 'keepdims'", "sum, mean, max, min"], None),
    ("sum(logsoftmax(X))", "X: N x D", ["log_softmax(x, axis=...)"], None),
    ("sum(sigma(X))", "X: N x D", ["write sigmoid(x)"], "'sign'"),   # suggested sign
    ("sum(ln(x))", "x: N", ["write log(x)"], None),
    ("sum(W)", "w: D", ["unknown name 'W'; did you mean 'w'?"], None),
    ("sum(sum(X, dim=1))", "X: N x D", ["axis="], None),
    ("sum(mean(X, 1))", "X: N x D", ["write mean(..., axis=1)"], None),
    # Python's max of two numbers, written of arrays: the elementwise maximum
    ("sum(max(0, X))", "X: N x D", ["max(a, b) of two arrays is maximum(a, b)"], "axis=X"),
    ("sum(min(X, Y))", "X, Y: N x D", ["minimum(a, b)"], "axis=Y"),
    ("sum(max(X, 0))", "X: N x D", ["write max(..., axis=0)", "maximum(x, 0) is elementwise"],
     None),
    ("einsum(X, X)", "X: N x D", ["einsum takes its subscripts first, as a string"], "'sum'"),
    ("True * sum(X)", "X: N x D", ["unknown name 'True'", "not values"], None),
    ("sum(X) == 1", "X: N x D", ["the function f is a comparison",
                                 "where(cond, a, b)"], None),
    ("sum(where(0 < X < 1, X, 0))", "X: N x D", ["comparisons do not chain"], None),
    ("sum((X > 0) * X)", "X: N x D", ["where(cond, a, b)"], None),
    ("sum(X) * 'a'", "X: N x D", ["only a keyword value"], None),
    ("sum(torch.matmul(X, W))", "X: N x D; W: D x H",
     ["drop the 'torch.' prefix", "a @ b"], None),
    ("sum(X.mean(axis=0))", "X: N x D", ["mean(X) for X.mean()"], None),
    ("||w|| ** 2", "w: D", ["norm(x) for ||x||"], None),
    ("sum(|w|)", "w: D", ["abs(x) for |x|"], None),
    ("w.T A w", "w: D; A: D x D", ["x.T @ A @ x"], None),
    ("2 (w @ w)", "w: D", ["x.T @ A @ x", "x * y elementwise"], None),
    ("sum(w) if w else 0", "w: D", [], "write the product"),
]


@pytest.mark.parametrize("expr, decls, fixes, wrong", HINTS, ids=[h[0] for h in HINTS])
def test_regression_numpy_habits_get_the_fix(expr, decls, fixes, wrong):
    source = decls.replace("; ", "\n") + f"\nf = {expr}\n"
    err = error_of(source)
    assert err.line == source.count("\n")
    for fix in fixes:
        assert fix in err.message, err.message
    if wrong:
        assert wrong not in err.message, err.message


def _called(text: str) -> set[str]:
    """The names text calls as functions, `name(` (not a method, `X.name(`)."""
    return set(re.findall(r"(?<![\w.])([A-Za-z_]\w*)\(", text))


def test_every_hint_names_functions_of_the_language():
    # X.pow() got "call the function, as in pow(X)": there is no pow
    known = set(ops.function_names())
    methods = ["pow", "sum", "exp", "clamp", "t", "transpose", "item", "reshape", "flatten",
               "size", "matmul", "mm", "dot", "foo", "squeeze", "numpy", "abs", "argmax"]
    texts = [(name, hint) for table in (hints.FUNCTIONS, hints.ATTRIBUTES, hints.KEYWORDS,
                                        hints.NAMES) for name, hint in table.items()]
    texts += [("", hint) for _, _, hint in hints.SYNTAX if isinstance(hint, str)]
    texts += [(name, hints.method(name, "2")) for name in methods]
    texts += [(name, hints.module_call("np", name)) for name in methods]
    for written, text in texts:
        assert _called(text) - known - {written} == set(), (written, text)


@pytest.mark.parametrize("shape", ["(N, D)", "N, D", "[N, D]", "R^(N x D)", "ℝ^(N x D)",
                                   "R^N"])
def test_shapes_written_as_tuples_or_math_get_the_declaration(shape):
    # X: R^(N x D) got "write ** for a power", X: (N, D) no hint
    err = error_of(f"X: {shape}\nf = sum(X)\n")
    assert err.line == 1 and "declare shapes as N x D" in err.message
    assert "**" not in err.message


def test_wrt_a_name_in_the_wrong_case_suggests_the_variable(capsys):
    # wrt W with only w declared: "not declared", no suggestion
    err = error_of("w: D\nf = sum(w)\nwrt W\n")
    assert (err.line, err.column) == (3, 5) and "did you mean 'w'?" in err.message
    with pytest.raises(NameResolutionError, match="did you mean 'w'"):
        matcalc.parse("w: D\nf = sum(w)\n").with_wrt("W")
    assert "did you mean 'w'?" in assert_exit_2(capsys, "grad", "-e", "sum(w)", "-d", "w: D",
                                                "--wrt", "W")


@pytest.mark.parametrize("source", ["X: N D\nf = sum(X)\n", "X: N x D real\nf = sum(X)\n",
                                    "X: N x D\nf = sum(X)\nwrt X Y\n"])
def test_a_declaration_or_wrt_error_suggests_no_product(source):
    assert "write the product" not in error_of(source).message


def test_python_statements_are_not_a_problem():
    err = error_of("import numpy as np\nX: N x D\nf = sum(X)\n")
    assert err.line == 1 and "a problem is not Python" in err.message


def test_regression_wrt_an_intermediate_says_so_without_a_wrong_suggestion(capsys):
    # --wrt Z1 suggested b1
    source = "X: N x D\nW1: D x H\nb1: H\nZ1 = X @ W1 + b1\nf = sum(Z1 ** 2)\n"
    p = matcalc.parse(source)
    with pytest.raises(NameResolutionError) as info:
        p.with_wrt("Z1")
    assert "Z1 is an intermediate, not a variable" in info.value.message
    assert "X, W1, b1" in info.value.message and "did you mean" not in info.value.message
    err = error_of(source + "wrt Z1\n")
    assert "intermediate" in err.message and "did you mean" not in err.message


# ---------------------------------------------------------------- options ---

@pytest.mark.parametrize("option", [
    ["--tol", "-1"], ["--tol", "0"], ["--tol", "nan"], ["--tol", "inf"], ["--seed", "-1"],
    ["--dims", "N=0"], ["--dims", "N=-3"], ["--dims", "N=abc"], ["--dims", "N=²"],
    ["--dims", "N=3,N=4"], ["--dims", "=3"], ["--dims", "N=3.5"],
])
def test_regression_invalid_numbers_and_sizes_exit_2(capsys, option):
    err = assert_exit_2(capsys, "check", "-e", "sum(X)", "-d", "X: N x D", *option)
    assert option[0] in err and len(err.splitlines()) == 1


def test_regression_unwritable_output_exits_2(capsys, tmp_path):
    missing = tmp_path / "no" / "dir" / "out.py"
    err = assert_exit_2(capsys, "codegen", "-e", "sum(X)", "-d", "X: N", "-o", str(missing))
    assert f"cannot write {missing}" in err


@pytest.mark.parametrize("command", ["grad", "codegen", "check", "hessian", "hvp"])
def test_regression_empty_wrt_is_an_error(capsys, command):
    err = assert_exit_2(capsys, command, "-e", "sum(x ** 3)", "-d", "x: N", "--wrt", "")
    assert "wrt is empty" in err


def test_regression_byte_order_mark_is_accepted(capsys, tmp_path):
    path = tmp_path / "bom.mc"
    path.write_bytes(b"\xef\xbb\xbfx: N\nf = sum(x ** 2)\n")
    code, out, err = main(capsys, "grad", str(path))
    assert code == 0 and err == "" and "∂f/∂x = 2 * x" in out
    assert matcalc.parse("\ufeffx: N\nf = sum(x)\n").variables["x"].shape


@pytest.mark.parametrize("source, column", [
    ("scalar: N\nf = sum(scalar)\n", 1),
    ("x: N\nscalar = sum(x)\n", 1),
    ("x: N x scalar\nf = sum(x)\n", 8),
])
def test_regression_scalar_is_reserved(source, column):
    err = error_of(source)
    assert isinstance(err, NameResolutionError) and (err.line, err.column) == (1 + (
        "scalar =" in source), column)
    assert "'scalar' is reserved" in err.message


# --------------------------------------------------------------- sympy ---

def test_regression_from_sympy_accepts_plain_dimension_symbols():
    # "'X' is N x D in SymPy but N x D here": sympy.symbols("N D") carry no
    # positive-integer assumption, so they were other symbols than the dims
    N, D, M = sympy.symbols("N D M")
    X, w = sympy.MatrixSymbol("X", N, D), sympy.MatrixSymbol("w", D, 1)
    p = matcalc.parse("X: N x D\nw: D\nf = sum(X @ w)\n")
    got = from_sympy(sympy.Trace(X.T * X) * N + sympy.Trace(X * w * w.T * X.T), p.scope())
    want = matcalc.parse("X: N x D\nw: D\nf = N * trace(X.T @ X) + (X @ w) @ (X @ w)\n")
    rng = np.random.default_rng(0)
    values = {"X": rng.standard_normal((3, 4)), "w": rng.standard_normal(4), "N": 3, "D": 4}
    from matcalc.checks.verify import evaluate
    np.testing.assert_allclose(evaluate(got, values), evaluate(want.output, values))
    with pytest.raises(MatcalcError, match="'X' is M x D in SymPy but N x D here"):
        from_sympy(sympy.Trace(sympy.MatrixSymbol("X", M, D).T * X), p.scope())


# ---------------------------------------------------------- large input ---

def test_regression_five_megabytes_of_parentheses_are_refused_at_the_limit():
    # 2.5 million nested parentheses around x @ x took 37-75 s in the parser;
    # nesting beyond MAX_NESTING is refused where it starts, before parsing
    n = 2_500_000
    source = "x: N\nf = " + "(" * n + "x @ x" + ")" * n + "\n"
    err = error_of(source)
    assert isinstance(err, ParseError) and "too deep" in err.message
    assert (err.line, err.column) == (2, 5 + MAX_NESTING)


@pytest.mark.parametrize("source, what", [
    ("x: N\nf = sum(" + "x + " * (MAX_TOKENS // 2) + "x)\n", "too long"),
    ("x: N\n" + "\n" * MAX_TOKENS + "f = sum(x)\n", "too long"),
    ("x: N\nf = sum(x" + "a" * (2 * MAX_NAME) + ")\n", "too long"),
    ("x: N\nf = sum(x) * 1" + "0" * (2 * MAX_NAME) + "\n", "too long"),
])
def test_regression_large_input_is_refused_with_its_place(source, what):
    err = error_of(source)
    assert isinstance(err, ParseError) and what in err.message
    assert len(str(err).splitlines()[1]) < 120          # a long line is shown in part


def test_large_comments_and_blanks_cost_nothing():
    source = "x: N\n# " + "a (" * 1_000_000 + "\nf = sum(x" + " " * 1_000_000 + ")\n"
    assert matcalc.parse(source).output is matcalc.problem("sum(x)", x="N").output


def test_input_at_the_limits_still_parses():
    depth = MAX_NESTING - 10
    p = matcalc.parse("x: N\nf = sum(" + "(" * depth + "x" + ")" * depth + ")\n")
    assert p.output is matcalc.problem("sum(x)", x="N").output


# -------------------------------------------------------------- constants ---

@pytest.mark.parametrize("expr, column, why", [
    ("sum(x) * exp(1000)", 14, "infinite"),
    ("sum(x) * log(0)", 14, "infinite"),
    ("sum(x) * sqrt(-1)", 14, "not a real number"),
    ("sum(x) * arcsin(2)", 14, "not a real number"),
    ("sum(x * exp(exp(exp(3))))", 13, "infinite"),
    ("sum(x) * exp(700) * exp(700)", 23, "infinite"),
    ("sum(x) + (-8) ** (1/3)", 19, "not a real number"),
    ("sum(x) * 10 ** 4999", 17, "overflows a float"),
    ("sum(x) * 2 ** 16610", 16, "overflows a float"),
    ("sum(x) * " + " ** ".join(["2"] * 100), None, "overflows a float"),
])
def test_regression_constants_must_be_finite_real_numbers(expr, column, why):
    # exp(1000), log(0), sqrt(-1) were accepted; a 5,000-digit power was a
    # VisitError traceback; a tower of 100 powers of 2 hung the parser
    with time_limit(20):
        err = error_of(f"x: N\nf = {expr}\n")
    assert isinstance(err, DomainError) and "a constant out of range" in err.message
    assert why in err.message and err.line == 2
    if column is None:  # the tower: at the power that overflows, 2 ** 65536
        assert f"f = {expr}"[err.column - 1:err.column + 1] == "**"
    else:
        assert err.column == column


def test_regression_constant_errors_exit_2_from_the_cli(capsys):
    for expr in ["sum(x) * 10 ** 4999", "sum(x) * exp(1000)"]:
        assert "out of range" in assert_exit_2(capsys, "grad", "-e", expr, "-d", "x: N")


@pytest.mark.parametrize("expr, value", [
    ("sum(x) * exp(2)", np.exp(2)), ("sum(x) * log(1)", 0.0), ("sum(x) * sqrt(4)", 2.0),
    ("sum(x) * exp(700)", np.exp(700)), ("sum(x) * 2 ** 1000", 2.0 ** 1000),
    ("sum(x) * (1 + 0.5 ** 5000)", 1.0), ("sum(x) * 2 ** -5000 + sum(x)", 1.0),
])
def test_finite_constants_are_kept(expr, value):
    module = matcalc.compile(f"x: N\nf = {expr}\n")
    v, g = module.value_and_grad(x=np.ones(2))
    np.testing.assert_allclose(g["x"], np.full(2, value))
