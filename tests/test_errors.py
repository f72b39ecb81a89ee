"""Bad input: every class raises a MatcalcError that says where, with a caret."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc import (DomainError, MatcalcError, NameResolutionError, ParseError,
                     ShapeError)


def error_of(source: str, filename: str = "t.mc") -> MatcalcError:
    with pytest.raises(MatcalcError) as info:
        matcalc.parse(source, filename)
    return info.value


def assert_at(err: MatcalcError, source: str, line: int, column: int,
              filename: str = "t.mc"):
    """`err` is at line:column, and str(err) shows the line with a caret there."""
    assert (err.line, err.column) == (line, column), str(err)
    rendered = str(err).splitlines()
    assert len(rendered) == 3, str(err)
    head, code, caret = rendered
    assert head.startswith(f"{filename}:{line}:{column}: "), head
    assert code == "    " + source.splitlines()[line - 1].expandtabs(1)
    assert caret == "    " + " " * (column - 1) + "^"
    assert err.message in head
    return head


# (id, source, exception class, line, column, fragments of the message)
CASES = [
    ("syntax-dangling-operator", "X: N x D\nf = sum(X +)\n", ParseError, 2, 12,
     ["syntax error", "unexpected ')'", "expected an expression"]),
    ("syntax-bad-character", "X: N x D\nf = X $ 2\n", ParseError, 2, 7,
     ["unexpected character '$'"]),
    ("syntax-bad-declaration", "X N x D\nf = sum(X)\n", ParseError, 1, 3, ["syntax error"]),
    ("unclosed-bracket", "X: N x D\nf = sum((X)\n", ParseError, 2, 12,
     ["unexpected end of input", "')'"]),
    ("unclosed-bracket-no-newline", "X: N x D\nf = (X", ParseError, 2, 7,
     ["unexpected end of input", "')'"]),
    ("extra-closing-bracket", "X: N x D\nf = sum(X))\n", ParseError, 2, 11,
     ["unexpected ')'"]),
    ("unknown-function", "X: N x D\nf = sum(rleu(X))\n", NameResolutionError, 2, 9,
     ["unknown function 'rleu'", "did you mean 'relu'?"]),
    ("unknown-function-alias", "A: N x N\nf = trac(A)\n", NameResolutionError, 2, 5,
     ["unknown function 'trac'", "did you mean 'trace'?"]),
    ("undeclared-variable", "X: N x D\nf = sum(X @ W)\n", NameResolutionError, 2, 13,
     ["unknown name 'W'"]),
    ("undeclared-variable-suggestion", "hidden: N x D\nf = sum(hiden)\n", NameResolutionError,
     2, 9, ["unknown name 'hiden'", "did you mean 'hidden'?"]),
    ("matmul-shapes", "X: N x D\nW1: E x H\nZ1 = X @ W1\n", ShapeError, 3, 8,
     ["shape mismatch in '@'", "X is N x D", "W1 is E x H"]),
    ("matmul-shapes-expressions", "X: N x D\nW: H x D\nf = sum((X + 1) @ W.T.T)\n",
     ShapeError, 3, 17, ["'@'", "(X + 1) is N x D", "W.T.T is H x D"]),
    ("matmul-vectors", "x: N\ny: D\nf = x @ y\n", ShapeError, 3, 7,
     ["'@'", "x is N", "y is D"]),
    ("matmul-scalar", "a: scalar\nX: N x D\nf = sum(a @ X)\n", ShapeError, 3, 11,
     ["'@'", "scalars"]),
    ("broadcast", "X: N x D\nb: H\nf = sum(X + b)\n", ShapeError, 3, 11,
     ["shape mismatch in '+'", "X is N x D", "b is H"]),
    ("broadcast-mul", "X: N x D\nY: D x N\nf = sum(X * Y)\n", ShapeError, 3, 11,
     ["'*'", "X is N x D", "Y is D x N"]),
    ("det-non-square", "A: N x D\nf = det(A)\n", ShapeError, 2, 5,
     ["det needs a square matrix", "N x D"]),
    ("inv-non-square", "A: N x D\nf = sum(inv(A))\n", ShapeError, 2, 9,
     ["inv needs a square matrix", "N x D"]),
    ("logdet-non-square", "A: N x D\nf = logdet(A)\n", ShapeError, 2, 5,
     ["logdet needs a square matrix", "N x D"]),
    ("logdet-vector", "x: N\nf = logdet(x)\n", ShapeError, 2, 5,
     ["logdet needs a square matrix"]),
    ("trace-non-square", "A: N x D\nf = tr(A)\n", ShapeError, 2, 5,
     ["trace needs a square matrix"]),
    ("wrt-undeclared", "X: N x D\nf = sum(X)\nwrt Y\n", NameResolutionError, 3, 5,
     ["wrt 'Y'", "not declared"]),
    ("wrt-typo", "W1: N x D\nbias: D\nf = sum(W1 + bias)\nwrt W1, bais\n", NameResolutionError,
     4, 9, ["wrt 'bais'", "did you mean 'bias'?"]),
    ("wrt-intermediate", "X: N x D\nZ = X * 2\nf = sum(Z)\nwrt Z\n", NameResolutionError, 4, 5,
     ["wrt 'Z'", "intermediate"]),
    ("wrt-twice", "X: N x D\nf = sum(X)\nwrt X, X\n", ParseError, 3, 5, ["twice"]),
    ("duplicate-variable", "X: N x D\nX: N\nf = sum(X)\n", NameResolutionError, 2, 1,
     ["'X' is already declared (line 1)"]),
    ("duplicate-in-one-line", "X, Y, X: N\nf = sum(X)\n", NameResolutionError, 1, 7,
     ["'X' is already declared"]),
    ("duplicate-intermediate", "X: N x D\nf = sum(X)\nf = sum(X)\n", NameResolutionError, 3, 1,
     ["'f' is already declared (line 2)"]),
    ("variable-named-like-dimension", "X: N x D\nN: D\nf = sum(X)\n", NameResolutionError, 2, 1,
     ["'N' is already declared"]),
    ("variable-named-None", "None: N\nf = sum(X)\n", NameResolutionError, 1, 1,
     ["'None' is reserved"]),
    ("arity-too-many", "X: N x D\nf = sum(X, X)\n", ParseError, 2, 5,
     ["sum() takes 1 argument, got 2"]),
    ("arity-too-few", "x: N\ny: N\nf = sum(outer(x))\n", ParseError, 3, 9,
     ["outer() takes 2 arguments, got 1"]),
    ("arity-none", "x: N\nf = exp()\n", ParseError, 2, 5, ["exp() takes 1 argument, got 0"]),
    ("unknown-keyword", "X: N x D\nf = sum(X, axes=0)\n", ParseError, 2, 5,
     ["sum() has no keyword 'axes'", "axis"]),
    ("keyword-on-elementwise", "X: N x D\nf = sum(exp(X, axis=0))\n", ParseError, 2, 9,
     ["exp() has no keyword 'axis'"]),
    ("keyword-twice", "X: N x D\nf = sum(X, axis=0, axis=1)\n", ParseError, 2, 20,
     ["'axis' twice"]),
    ("axis-out-of-range", "X: N x D\nf = sum(sum(X, axis=2))\n", ShapeError, 2, 9,
     ["axis 2 is out of range", "N x D"]),
    ("axis-of-vector", "x: N\nf = sum(x, axis=1)\n", ShapeError, 2, 5, ["axis 1"]),
    ("axis-negative-out-of-range", "X: N x D\nf = sum(sum(X, axis=-3))\n", ShapeError, 2, 9,
     ["axis -3 is out of range"]),
    ("axis-not-integer", "X: N x D\nf = sum(sum(X, axis=1.5))\n", ParseError, 2, 9,
     ["axis must be None or an integer"]),
    ("axis-mean", "X: N x D\nf = sum(mean(X, axis=5))\n", ShapeError, 2, 9, ["axis 5"]),
    ("index-out-of-range", "X: 3 x D\nf = sum(X[5])\n", ShapeError, 2, 9,
     ["index 5 is out of range", "size 3"]),
    ("unknown-attribute", "X: N x D\nf = sum(X.U)\n", ParseError, 2, 11, ["'.U'"]),
    ("zero-dimension", "X: 0 x D\nf = sum(X)\n", ShapeError, 1, 4, ["positive integer"]),
    ("none-as-value", "X: N x D\nf = sum(None)\n", ParseError, 2, 5, ["'None'"]),
    ("division-by-zero", "X: N x D\nf = sum(X / 0)\n", DomainError, 2, 11,
     ["division by zero"]),
    ("division-by-zero-scalar", "a: scalar\nf = a / 0\n", DomainError, 2, 7,
     ["division by zero"]),
    ("division-by-float-zero-matrix", "X: N x D\nf = sum(X / 0.0)\n", DomainError, 2, 11,
     ["division by zero"]),
    ("division-by-zero-dimensions", "X: N x D\nf = sum(X / (N - N))\n", DomainError, 2, 11,
     ["division by zero"]),
    ("division-by-zeros-array", "X: N x D\nf = sum(X / zeros(N, D))\n", DomainError, 2, 11,
     ["division by zero"]),
    ("zeros-to-a-negative-power", "x: N\nf = sum(x * zeros(N) ** -2)\n", DomainError, 2, 22,
     ["division by zero"]),
    ("dimension-power-overflows", "x: N\nf = sum(x) * N ** 5000\n", DomainError, 2, 16,
     ["N ** 5000", "overflows a float"]),
    ("dimension-power-divides", "x: N\nf = sum(x / N ** 5000)\n", DomainError, 2, 15,
     ["N ** 5000", "overflows a float"]),
    ("dimensions-product-overflows", "X: N x D\nf = sum(X * (N * D) ** 600)\n", DomainError,
     2, 21, ["D ** 600 * N ** 600", "overflows a float"]),
    ("bare-expression-not-last", "x: N\nsum(x)\ny = sum(x)\n", ParseError, 2, 1,
     ["must be the last statement"]),
    ("ones-with-expression", "x: N\nf = sum(ones(x) * x)\n", ParseError, 2, 9,
     ["dimensions"]),
    ("error-after-continuation", "X: N x D\nf = sum(\n    X @ W\n)\n", NameResolutionError, 3, 9,
     ["unknown name 'W'"]),
    ("error-after-semicolon", "X: N x D; f = sum(X @ W)\n", NameResolutionError, 1, 23,
     ["unknown name 'W'"]),
    ("error-with-crlf", "X: N x D\r\nf = sum(X @ W)\r\n", NameResolutionError, 2, 13,
     ["unknown name 'W'"]),
    ("error-after-unicode", "α: N\nβ: D\nf = α @ β\n", ShapeError, 3, 7,
     ["α is N", "β is D"]),
    ("error-inside-a-long-sum", "X: N x D\nb: H\nf = sum(X + X - b + X)\n", ShapeError, 3, 15,
     ["shape mismatch in '-': X + X is N x D but b is H"]),
    ("error-at-the-end-of-a-long-sum", "X: N x D\nb: H\nf = sum(X - X + X +  b)\n", ShapeError,
     3, 19, ["shape mismatch in '+': X - X + X is N x D but b is H"]),
    ("error-after-tab", "X: N x D\nb: H\nf = sum(X\t+ b)\n", ShapeError, 3, 11,
     ["shape mismatch in '+'"]),
    ("error-after-comment", "# header\nX: N x D  # a matrix\n\nf = sum(X @ X)  # oops\n",
     ShapeError, 4, 11, ["X is N x D"]),
]


@pytest.mark.parametrize("source, cls, line, column, fragments",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(source, cls, line, column, fragments):
    err = error_of(source)
    assert isinstance(err, cls), f"{type(err).__name__}: {err}"
    head = assert_at(err, source, line, column)
    for fragment in fragments:
        assert fragment in head, f"{fragment!r} not in {head!r}"


def test_error_classes_are_matcalc_errors():
    for cls in (ParseError, NameResolutionError, ShapeError, DomainError):
        assert issubclass(cls, MatcalcError)
    assert issubclass(MatcalcError, Exception)


@pytest.mark.parametrize("source", ["", "\n\n", "# only a comment\n", "   \n"])
def test_empty_problem(source):
    err = error_of(source)
    assert isinstance(err, ParseError)
    assert "empty problem" in str(err)
    assert str(err).startswith("t.mc:")


def test_declarations_without_function():
    err = error_of("X: N x D\nY: N\n")
    assert isinstance(err, ParseError)
    assert "no function" in str(err)


def test_error_without_filename_has_no_prefix():
    with pytest.raises(NameResolutionError) as info:
        matcalc.parse("X: N x D\nf = sum(Q)\n")
    assert str(info.value).splitlines()[0] == "2:9: unknown name 'Q'"


def test_problem_helper_reports_place_in_the_expression():
    with pytest.raises(ShapeError) as info:
        matcalc.problem("sum(X @ W)", X="N x D", W="H x K")
    err = info.value
    assert (err.filename, err.line, err.column) == ("<expr>", 1, 7)
    assert "X is N x D but W is H x K" in str(err)
    assert str(err).splitlines()[1] == "    sum(X @ W)"


@pytest.mark.parametrize("wrt", ["Q", ["W", "Q"], "W, W", [], "Z"])
def test_api_wrt_errors(wrt):
    p = matcalc.parse("X: N x D\nW: D x H\nZ = X @ W\nf = sum(Z)\n")
    with pytest.raises(NameResolutionError):
        matcalc.grad(p, wrt=wrt)


def test_api_wrt_suggestion():
    p = matcalc.parse("W1: N x D\nbias: D\nf = sum(W1 + bias)\n")
    with pytest.raises(NameResolutionError, match="did you mean 'bias'"):
        matcalc.grad(p, wrt="bais")
    assert list(matcalc.grad(p, wrt="bias").exprs) == ["bias"]
    assert list(matcalc.grad(p, wrt=["bias", "W1"]).exprs) == ["bias", "W1"]
    assert list(matcalc.grad(p, wrt="bias, W1").exprs) == ["bias", "W1"]


def test_api_rejects_non_problem():
    with pytest.raises(MatcalcError, match="expected a Problem"):
        matcalc.grad(42)


def test_api_accepts_text():
    g = matcalc.grad("x: N\nf = sum(x ** 2)\n")
    assert str(g).splitlines()[-1] == "∂f/∂x = 2 * x"


@pytest.mark.parametrize("dims, fragment", [
    ({"Q": 3}, "'Q'"),
    ({"N": 0}, "positive integer"),
    ({"N": 2.5}, "positive integer"),
])
def test_check_dims_errors(dims, fragment):
    p = matcalc.problem("sum(X)", X="N x D")
    with pytest.raises(MatcalcError, match=fragment):
        matcalc.check(p, dims=dims)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_check_outside_domain_is_a_domain_error():
    p = matcalc.problem("sum(log(x - 10))", x="N")
    with pytest.raises(DomainError, match="not finite"):
        matcalc.check(p)


def test_deeply_nested_expression_works_end_to_end():
    # 2000 nested calls: parsed, derived and emitted without recursion, and
    # the generated module splits the chain into lines Python compiles.
    source = "x: N\nf = sum(" + "sin(" * 2000 + "x" + ")" * 2000 + ")\n"
    module = matcalc.compile(source)
    value, grads = module.value_and_grad(x=np.array([0.3, -0.2]))
    assert np.all(np.isfinite(grads["x"]))


def test_deep_parentheses_are_fine():
    source = "x: N\nf = sum(" + "(" * 3000 + "x" + ")" * 3000 + ")\n"
    assert matcalc.parse(source).output is matcalc.problem("sum(x)", x="N").output


def test_long_flat_sum_parses():
    # A sum of many terms is long, not deep.
    terms = 1000
    source = "x: N\nf = sum(x" + " + x" * (terms - 1) + ")\n"
    p = matcalc.parse(source)
    assert p.output is matcalc.problem(f"sum({terms} * x)", x="N").output


def test_deep_nesting_parses_and_prints():
    depth = 10000
    source = "x: N\nf = sum(" + "tanh(" * depth + "x" + ")" * depth + ")\n"
    p = matcalc.parse(source)
    assert str(p).count("tanh(") == depth


@pytest.mark.parametrize("shape", ["scalar", "N", "N x D"])
@pytest.mark.parametrize("zero", ["0", "0.0", "(N - N)", "0 * N", "zeros({dims})"])
def test_regression_division_by_a_zero_constant_is_a_domain_error(shape, zero):
    # X / 0 was a ShapeError while x / 0.0 was a DomainError (and X / zeros(N, D)
    # no error at all): the divisor's type and the operand's shape decided
    dims = "N" if shape == "scalar" else ", ".join(shape.split(" x "))
    divisor = zero.format(dims=dims)
    with pytest.raises(DomainError, match="division by zero") as info:
        matcalc.problem(f"sum(A / {divisor})", A=shape, B="N x D")
    assert (info.value.line, info.value.column) == (1, 7)
    p = matcalc.problem("sum(A)", A=shape, B="N x D")
    with pytest.raises(DomainError, match="division by zero"):
        p.expr(f"A / {divisor}")


def test_regression_dimension_to_a_huge_power_is_a_domain_error():
    # N ** 5000 was accepted and the generated module raised OverflowError
    # when it ran; it is now out of range where it is written, as 2 ** 5000 is
    from conftest import run_cli
    for text in ["x: N\nf = sum(x) * N ** 5000\n", "x: N\nf = sum(x) / N ** 5000\n",
                 "x: N\nf = N ** 5000 * sum(x) / N ** 4999\n"]:
        for run in (matcalc.parse, matcalc.grad, matcalc.codegen, matcalc.check):
            with pytest.raises(DomainError, match="overflows a float"):
                run(text)
    proc = run_cli("grad", "-e", "sum(x) * N ** 5000", "-d", "x: N")
    assert proc.returncode == 2 and b"N ** 5000" in proc.stderr
    assert b"Traceback" not in proc.stderr
    # a power that fits a float at size 2 works there
    module = matcalc.compile("x: N\nf = sum(x) * N ** 1000\n")
    value, grads = module.value_and_grad(x=np.array([0.5, 0.25]))
    assert value == 0.75 * 2.0 ** 1000
    np.testing.assert_array_equal(grads["x"], np.full(2, 2.0 ** 1000))


# ---------------------------------------------- a new user's trial (s13) ---
# Each input here raised a traceback (or printed nothing and exited 0).

TRIAL = [
    ("no-variables", "f = 2\n", ParseError, 1, 1,
     ["no variables to differentiate by: declare one, e.g. 'x: N'"]),
    ("no-variables-a-fixed-size", "H = 8\nf = H * 2\n", ParseError, 2, 1,
     ["no variables to differentiate by"]),
    ("reshape-to-a-variable", "X: N x D\nw: D\nf = sum(reshape(X, w))\n", ShapeError, 3, 20,
     ["reshape's shape is sizes", "reshape(X, (N, D))"]),
    ("reshape-to-a-size-that-differs", "w: D\nf = sum(reshape(w, 6))\n", ShapeError, 2, 9,
     ["cannot reshape D (D entries) to 6 (6 entries)"]),
    ("reshape-to-a-product-that-is-not-whole", "w: D\nf = sum(reshape(w, D / 2))\n",
     ShapeError, 2, 20, ["a size is a dimension"]),
    ("outer-of-a-scalar", "a: scalar\nw: D\nf = sum(outer(a, w))\n", ShapeError, 3, 9,
     ["outer needs two vectors, got a scalar", "a * w"]),
    ("outer-of-a-matrix", "X: N x D\nw: D\nf = sum(outer(w, X))\n", ShapeError, 3, 9,
     ["outer needs two vectors, got N x D"]),
    ("cumsum-of-a-tuple-of-axes", "X: N x D\nf = sum(cumsum(X, axis=(0,)))\n", ShapeError,
     2, 9, ["cumsum takes one axis (an integer), not (0,)"]),
    ("softmax-of-a-scalar", "a: scalar\nf = softmax(a)\n", ShapeError, 2, 5,
     ["softmax needs an array, got a scalar"]),
    ("softmax-of-a-number", "a: scalar\nf = a * softmax(2)\n", ShapeError, 2, 9,
     ["softmax needs an array"]),
    ("log-softmax-of-a-scalar", "a: scalar\nf = log_softmax(a)\n", ShapeError, 2, 5,
     ["softmax needs an array"]),
    # silently misread: MATLAB's x' * A * x was elementwise, A x_j² summed
    ("matlab-transpose-product", "x: N\nA: N x N\nf = x' * A * x\n", ParseError, 3, 6,
     ["' is MATLAB's transpose, and * is elementwise here", "write x.T, and @ for a matrix"]),
    ("matlab-transpose-on-the-right", "A: N x N\nf = sum(A * (A + 1)')\n", ParseError, 2, 20,
     ["write (A + 1).T"]),
    # misleading messages
    ("fixed-size-zero", "H = 0\nX: N x H\nf = sum(X)\n", ShapeError, 1, 1,
     ["a fixed size must be a positive integer, got 0"]),
    ("fixed-size-negative", "H = -2\nX: N x H\nf = sum(X)\n", ShapeError, 1, 1,
     ["a fixed size must be a positive integer, got -2"]),
    ("fixed-size-fraction", "H = 2.5\nX: N x H\nf = sum(X)\n", ShapeError, 1, 1,
     ["got 2.5"]),
    ("intermediate-as-a-dimension", "x: N\nH = sum(x)\nX: N x H\nf = sum(X)\n",
     NameResolutionError, 3, 8, ["'H' is an intermediate (a value), not a dimension"]),
    ("wrt-a-dimension", "X: N x D\nf = sum(X)\nwrt N\n", NameResolutionError, 3, 5,
     ["wrt 'N': N is a dimension (a size), not a variable; the variables are X"]),
]


@pytest.mark.parametrize("source, cls, line, column, fragments",
                         [c[1:] for c in TRIAL], ids=[c[0] for c in TRIAL])
def test_trial_bad_input(source, cls, line, column, fragments):
    test_bad_input(source, cls, line, column, fragments)


@pytest.mark.parametrize("source, shape", [("w: D\nf = sum(reshape(w, D))\n", "D"),
                                           ("w: 6\nf = sum(reshape(w, 6))\n", "6"),
                                           ("X: N x D\nf = sum(reshape(X, N*D))\n", "D*N")])
def test_reshape_takes_one_size_as_numpy_does(source, shape):
    p = matcalc.parse(source)
    tupled = matcalc.parse(source.replace(f", {shape.replace('D*N', 'N*D')})",
                                          f", ({shape.replace('D*N', 'N*D')},))"))
    assert p.output is tupled.output
    assert matcalc.check(p).ok


@pytest.mark.parametrize("run", [matcalc.grad, matcalc.hessian, matcalc.hvp, matcalc.jacobian,
                                 matcalc.codegen, matcalc.check,
                                 lambda p: matcalc.codegen(p, hessian=True)])
def test_no_variables_is_an_error_everywhere(run):
    with pytest.raises(ParseError, match="no variables to differentiate by"):
        run("f = 3")


def test_a_constant_function_of_declared_variables_is_fine():
    g = matcalc.grad("x: N\nf = 3\n")
    assert str(g["x"]) == "zeros(N)"


def test_a_missing_gradient_is_a_key_error_that_names_them():
    p = matcalc.parse("X: N x D\nw: D\nf = sum((X @ w) ** 2)\nwrt w\n")
    for result in (matcalc.grad(p), matcalc.hessian(p, "w")):
        with pytest.raises(KeyError) as info:
            result["W"]
        assert isinstance(info.value, NameResolutionError)
        assert "did you mean 'w'?" in str(info.value), str(info.value)
    with pytest.raises(KeyError, match="the gradients are by w$"):
        matcalc.grad(p)["X"]


@pytest.mark.parametrize("source", [
    "x, b: N\nA: N x N\nf = 0.5 * x' @ A @ x - b' @ x\n",   # a number times x' scales
    "A, B: N x N\nf = sum((A') * B)\n",                     # bracketed: elementwise, as meant
    "X: N x D\ndX = X * 2\ndY = X * 3\n",                  # a program of several arrays
    "X: N x D\nH = 4\nf = sum(X)\n",                       # an unused size
])
def test_primes_and_unused_lines_that_are_fine(source):
    matcalc.parse(source)


def test_wrt_a_dimension_in_the_library():
    p = matcalc.problem("sum(X)", X="N x D")
    with pytest.raises(NameResolutionError, match="D is a dimension"):
        p.with_wrt("D")


@pytest.mark.parametrize("keywords, message", [
    ({"inputs": {"X": None}}, "input 'X' is not an array of numbers (None)"),
    ({"inputs": {"X": np.ones((2, 3)) * 1j}}, "input 'X' is complex"),
    ({"inputs": {"X": [[1 + 0j, 2]]}}, "input 'X' is complex"),
    ({"inputs": {"X": [[1, 2], [3]]}}, "input 'X' is not an array of numbers (rows of unequal"),
    ({"inputs": {"X": [[10 ** 400, 1]]}}, "input 'X' is not an array of numbers (too large"),
    ({"dims": {"Q": 4}}, "dims= (--dims) names 'Q', which is not a dimension of the problem "
                         "(its dimensions: N, D)"),
    ({"dims": {"N": 10 ** 12}}, "give smaller sizes by dims= (--dims)"),
    ({"dims": {"N": True}}, "dimension N must be a positive integer, got True"),
    ({"against": "nosuchmodule:fn"}, "against= (--against): no module named 'nosuchmodule'"),
])
@pytest.mark.filterwarnings("error")  # no ComplexWarning from the cast
def test_check_errors_name_the_keyword(keywords, message):
    p = matcalc.problem("sum(X)", X="N x D")
    with pytest.raises(MatcalcError) as info:
        matcalc.check(p, **keywords)
    assert message in str(info.value)


def test_check_reads_a_product_dimensions_factor_from_the_inputs():
    """--inputs with X: N x F of F = 4 * H: H = 8 / 4 (it said dims= names
    '4*H', which is not a dimension, though no dims were given)."""
    p = matcalc.parse("F = 4 * H\nX: N x F\nb: H\nf = sum(X) / H + sum(b)")
    result = matcalc.check(p, inputs={"X": np.ones((2, 8))})
    assert result.ok and result.dims["H"] == 2
    with pytest.raises(MatcalcError, match=r"has an axis 4\*H of size 6, which is not a "
                                           r"multiple of 4"):
        matcalc.check(p, inputs={"X": np.ones((2, 6))})
    with pytest.raises(MatcalcError, match="which is not 12"):
        matcalc.check(p, inputs={"X": np.ones((2, 8)), "b": np.ones(3)})


def test_check_of_an_array_no_machine_holds_says_so():
    """ones(10 ** 12) in the function: a MatcalcError naming the sizes (was
    NumPy's _ArrayMemoryError, 7.28 TiB, as a traceback)."""
    with pytest.raises(MatcalcError, match="needs more memory than this machine has at N = 3"):
        matcalc.check(matcalc.problem("sum(ones(10 ** 12)) + sum(x)", x="N"))


@pytest.mark.parametrize("source, dims, message", [
    ("H = 8\nX: N x H\nf = sum(X)\n", {"H": 4},
     "dims= (--dims) gives H, which is fixed by line 1 (H = 8): give the problem's "
     "dimensions (N)"),
    ("H = 4\nD = H * E\nX: N x D\nf = sum(X)\n", {"D": 8},
     "gives D, which is fixed by line 2 (D = H * E)"),
])
def test_dims_of_a_fixed_size_say_so(source, dims, message):
    with pytest.raises(MatcalcError) as info:
        matcalc.check(source, dims=dims)
    assert message in str(info.value)


# Habits from MATLAB, LaTeX, Unicode and other languages: each error names the
# fix. (id, source, line, column, fragment of the message)
HABITS = [
    ("concatenate-arrays-apart", "X: N x D\nf = sum(concatenate(X, X, axis=1))\n", 2, 9,
     "concatenate() takes the arrays as one tuple: write concatenate((X, X), axis=1)"),
    ("matlab-call-indexing", "X: N x D\nf = X(1, 2)\n", 2, 5,
     "unknown function 'X'; X is a variable: index it as X[0, 1] (square brackets, from 0)"),
    ("matlab-colon-indexing", "X: N x D\nf = sum(X(:, 1))\n", 2, 11,
     "X(...) is a call: index with square brackets, from 0, as in X[:, 0]"),
    ("percent-comment", "% loss\nX: N x D\nf = sum(X)\n", 1, 1, "comments start with #, not %"),
    ("percent-after-code", "X: N x D\nf = sum(X) % loss\n", 2, 12, "comments start with #"),
    ("unclosed-bracket-before-a-statement", "X: N x D\nY = sum((X\nZ = X\nf = sum(Z)\n",
     3, 1, "the '(' at 2:9 is not closed"),
    ("numel", "y: N\nf = sum(y) / numel(y)\n", 2, 14, "numel(y) is N"),
    ("numel-of-a-matrix", "X: N x D\nf = sum(X) / numel(X)\n", 2, 14, "numel(X) is N * D"),
    ("complex-literal", "y: N\nf = sum(y * 1j)\n", 2, 14, "complex numbers are not in the"),
    ("hex-literal", "y: N\nf = sum(y * 0x10)\n", 2, 14, "hex literals are not in the language: "
     "write 16"),
    ("underscore-number", "y: N\nf = sum(y * 1_000)\n", 2, 14, "write 1000 (no _ in numbers)"),
    ("lambda", "y: N\nf = lambda y: sum(y)\n", 2, 12, "lambda is not in the language"),
    ("matlab-elementwise-product", "X: N x D\nf = sum(X .* X)\n", 2, 12,
     "'.*' is MATLAB's: write * (elementwise"),
    ("matlab-elementwise-division", "X: N x D\nf = sum(X ./ X)\n", 2, 12, "write / (elementwise)"),
    ("matlab-left-division", "A: N x N\nw: N\nf = sum(A\\w)\n", 3, 10, "write solve(A, w)"),
    ("matlab-not-equal", "x: N\nf = sum(where(x ~= 0, x, 0))\n", 2, 17, "write != for 'not equal'"),
    ("matlab-end", "y: N\nf = y[end]\n", 2, 7, "write -1 for the last entry, as in y[-1]"),
    ("power-T", "X: N x D\nf = sum(X**T)\n", 2, 12, "'**T' is not a transpose: write X.T"),
    ("latex-frac", "x: N\nf = \\frac{1}{2} sum(x)\n", 2, 5, "LaTeX is not the input language"),
    ("latex-cdot", "x: N\nf = 2 \\cdot sum(x)\n", 2, 7, "LaTeX is not the input language"),
    ("unicode-times", "X: N x D\nf = sum(X × X)\n", 2, 11,
     "'×' (U+00D7 MULTIPLICATION SIGN) is not in the language: write * (elementwise) or @"),
    ("unicode-dot", "X: N x D\nf = sum(X · X)\n", 2, 11, "(U+00B7 MIDDLE DOT)"),
    ("unicode-hadamard", "X: N x D\nf = sum(X ⊙ X)\n", 2, 11, "write * (elementwise)"),
    ("unicode-sum", "X: N x D\nf = ∑(X)\n", 2, 5, "write sum(...)"),
    ("unicode-minus", "X: N x D\nf = sum(X − X)\n", 2, 11, "(U+2212 MINUS SIGN) is not in the "
     "language: write -"),
    ("unicode-square", "X: N x D\nf = sum(X²)\n", 2, 9, "unknown name 'X²'; write X ** 2"),
    ("unicode-element-of", "X ∈ N x D\nf = sum(X)\n", 1, 3, "write ':'"),
    ("unicode-transpose", "X: N x D\nf = sum(Xᵀ)\n", 2, 9, "unknown name 'Xᵀ'; write X.T"),
    ("unicode-top", "X: N x D\nf = sum(X⊤)\n", 2, 10, "write .T"),
    ("no-break-space", "X: N x D\nf = sum(X\u00a0+ X)\n", 2, 10,
     "the text has a U+00A0 NO-BREAK SPACE here: replace it with a space"),
    ("zero-width-space", "X: N x D\nf = sum(X\u200b)\n", 2, 10, "U+200B ZERO WIDTH SPACE"),
    ("byte-order-mark-mid-file", "X: N x D\n\ufefff = sum(X)\n", 2, 1, "U+FEFF"),
    ("full-width-parenthesis", "X: N x D\nf = sum\uff08X)\n", 2, 8, "write ("),
    ("smart-quotes", "X: N x D\nf = norm(X, ord=\u2018fro\u2019)\n", 2, 17, "write '"),
    ("matmul-inner-sizes", "X, B: N x D\nf = sum(X @ B)\n", 2, 11,
     "the inner sizes D and N differ: X.T @ B fits"),
    ("matmul-inner-sizes-right", "X: N x D\nW: H x D\nf = sum((X + 1) @ W)\n", 3, 17,
     "the inner sizes D and H differ: (X + 1) @ W.T fits"),
    ("vector-along-rows", "X: N x D\ny: N\nf = sum(X + y)\n", 3, 11,
     "to match the rows, write y[:, None] (a column)"),
    ("misspelt-symmetric", "S: D x D symetric\nf = sum(S)\n", 1, 10, "did you mean 'symmetric'?"),
    ("declaration-without-colon", "X N x D\nf = sum(X)\n", 1, 3,
     "a declaration needs ':': write X: N x D"),
    ("negative-dimension", "X: -3 x D\nf = sum(X)\n", 1, 4,
     "a dimension must be a positive integer"),
    ("fractional-dimension", "X: 2.5 x D\nf = sum(X)\n", 1, 5, "a dimension must be a positive"),
    ("wrt-colon", "X: N x D\nf = sum(X)\nwrt: X\n", 3, 4, "wrt is reserved: write wrt w, b"),
    ("wrt-equals", "X: N x D\nf = sum(X)\nwrt = X\n", 3, 5, "wrt is reserved"),
    ("list-of-arrays", "X: N x D\nf = sum(concatenate([X, X]))\n", 2, 21, "write a tuple (...)"),
    ("list-of-axes", "X: N x D\nf = sum(X, axis=[0, 1])\n", 2, 17, "write a tuple (...)"),
    ("size-not-whole", "X: N x D\nf = sum(reshape(X, (2.5, N)))\n", 2, 20,
     "(2.5 is not a whole number)"),
    ("size-of-several-terms", "X: N x D\nf = sum(eye(D + 1) @ X)\n", 2, 20,
     "eye(D + 1) is (D + 1) x (D + 1)"),
]


@pytest.mark.parametrize("source, line, column, fragment", [c[1:] for c in HABITS],
                         ids=[c[0] for c in HABITS])
def test_habits_get_the_fix(source, line, column, fragment):
    err = error_of(source)
    head = assert_at(err, source, line, column)
    assert fragment in head, head


def test_zeros_of_a_tuple_is_numpy_spelling():
    p = matcalc.parse("X: N x D\nf = sum(zeros((N, D)) + X)\n")
    assert p.output is matcalc.parse("X: N x D\nf = sum(zeros(N, D) + X)\n").output


@pytest.mark.parametrize("source, column, fragment", [
    ("S: N x N SPD\nf = logdet(S)\n", 10, "did you mean 'spd'?"),
    ("S: N x N positive definite\nf = logdet(S)\n", 19, "declared spd, as in S: D x D spd"),
])
def test_domain_words_as_a_user_writes_them(source, column, fragment):
    head = assert_at(error_of(source), source, 1, column)
    assert fragment in head, head


@pytest.mark.parametrize("source", ["x: N\nsum(x ** 2)\nwrt x\n",      # wrt after a bare expression
                                    "w: D\nf = sum(w)\nwrt w,\n"])       # a trailing comma
def test_wrt_as_a_user_writes_it(source):
    g = matcalc.grad(source)
    assert list(g.exprs) == ["x" if "x" in source else "w"]


def test_norm_keepdims_says_how():
    err = error_of("X: N x D\nf = sum(norm(X, axis=1, keepdims=True))\n")
    assert "norm(X, axis=1)[:, None]" in err.message


def test_text_given_as_an_expression_or_a_path():
    with pytest.raises(ParseError, match="<expr> is an expression: drop 'f ='"):
        matcalc.problem("f = sum(X)", X="N x D")
    from conftest import MLP
    with pytest.raises(ParseError, match=r"parse takes the problem's text: "
                                         r"parse\(open\(path\).read\(\)\)"):
        matcalc.parse(str(MLP))


def test_carriage_returns_alone_are_named():
    err = error_of("X: N x D\rf = sum(X)\r")
    assert "carriage return alone (CR)" in err.message


@pytest.mark.parametrize("run", [matcalc.grad, matcalc.codegen, matcalc.check, matcalc.hvp])
def test_a_line_after_the_function_is_refused_when_differentiating(run):
    # silently misread: Z = X * 2 after f = sum(X) became the function
    source = "X: N x D\nf = sum(X)\nZ = X * 2\n"
    with pytest.raises(ParseError) as info:
        run(matcalc.parse(source, "t.mc"))
    head = assert_at(info.value, source, 2, 1)
    assert ("the function is the last line, Z, an array, and the scalar f before it is never "
            "used: put f's line last") in head


def test_a_gradient_program_with_a_scalar_gradient_first_reads_back():
    p = matcalc.parse("X: scalar\nW: N x N\ng: N x N\ndX = sum(g)\ndW = g\n")
    assert list(p.intermediates) == ["dX", "dW"]
