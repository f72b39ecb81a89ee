"""The `matcalc` command, run as a subprocess (and in-process where a result
has to be forced)."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.ad.gradient import Gradient
from matcalc import cli
from matcalc.checks.verify import CheckResult

from conftest import AFFINE_SOURCE, MLP, ROOT, run_cli


def out(proc) -> str:
    return proc.stdout.decode("utf-8")


def err(proc) -> str:
    return proc.stderr.decode("utf-8")


def assert_ok(proc):
    assert proc.returncode == 0, err(proc)
    assert err(proc) == ""


def assert_bad_input(proc, *fragments):
    """Exit 2, one clean message on stderr, nothing on stdout."""
    stderr = err(proc)
    assert proc.returncode == 2, (proc.returncode, out(proc), stderr)
    assert "Traceback" not in stderr
    assert stderr.startswith("matcalc: "), stderr
    assert out(proc) == ""
    for fragment in fragments:
        assert fragment in stderr, f"{fragment!r} not in {stderr!r}"
    return stderr


# ---------------------------------------------------------------- console ---

def test_console_script_is_installed():
    bindir = Path(sys.executable).parent
    script = bindir / ("matcalc.exe" if os.name == "nt" else "matcalc")
    assert script.exists(), f"no console script in {bindir}"
    assert os.access(script, os.X_OK)
    proc = subprocess.run([str(script), "grad", str(MLP)], capture_output=True, timeout=60)
    assert_ok(proc)
    assert out(proc) == str(matcalc.grad(matcalc.parse(MLP.read_text()))) + "\n"


def test_help():
    proc = run_cli("--help")
    assert_ok(proc)
    for command in ("grad", "codegen", "check"):
        assert command in out(proc)


# ------------------------------------------------------------------- grad ---

def test_grad_text(mlp_problem):
    proc = run_cli("grad", MLP)
    assert_ok(proc)
    assert out(proc) == str(matcalc.grad(mlp_problem)) + "\n"
    assert out(proc).splitlines()[0].startswith("# gradient of loss = ")
    assert "∂loss/∂W1 = X.T @ δZ1" in out(proc)


def test_grad_latex(mlp_problem):
    proc = run_cli("grad", MLP, "--format", "latex")
    assert_ok(proc)
    assert out(proc) == matcalc.grad(mlp_problem).latex() + "\n"
    assert out(proc).startswith("\\begin{aligned}")


def test_grad_wrt(mlp_problem):
    proc = run_cli("grad", MLP, "--wrt", "W2,b2")
    assert_ok(proc)
    text = out(proc)
    assert "∂loss/∂W2 = " in text and "∂loss/∂b2 = " in text
    assert "dW1" not in text and "db1" not in text
    assert text == str(matcalc.grad(mlp_problem, wrt=["W2", "b2"])) + "\n"


def test_grad_inline():
    proc = run_cli("grad", "-e", "sum((X @ w - y) ** 2)", "-d", "X: N x D", "-d", "w: D",
                   "-d", "y: N", "--wrt", "w")
    assert_ok(proc)
    assert out(proc) == ("# gradient of f = sum((X @ w - y) ** 2)\n"
                         "t0 = X @ w - y\n"
                         "∂f/∂w = 2 * (X.T @ t0)\n")


def test_grad_inline_latex():
    proc = run_cli("grad", "--expr", "sum(W1 ** 2)", "--decl", "W1: D x H", "--format", "latex")
    assert_ok(proc)
    assert "\\frac{\\partial f}{\\partial W_{1}} &= 2 W_{1}" in out(proc)


def test_grad_stdin():
    proc = run_cli("grad", "-", input=b"x: N\nf = sum(x ** 2)\n")
    assert_ok(proc)
    assert out(proc) == "# gradient of f = sum(x ** 2)\n∂f/∂x = 2 * x\n"


def test_grad_array_valued(tmp_path):
    path = tmp_path / "affine.mc"
    path.write_text(AFFINE_SOURCE, "utf-8")
    proc = run_cli("grad", path)
    assert_ok(proc)
    assert out(proc).splitlines() == [
        "# gradient of S = X @ W + b, given δS = ∂L/∂S",
        "∂L/∂X = δS @ W.T", "∂L/∂W = X.T @ δS", "∂L/∂b = sum(δS, axis=0)"]


# ---------------------------------------------------------------- codegen ---

def test_codegen_stdout(mlp_problem):
    proc = run_cli("codegen", MLP)
    assert_ok(proc)
    assert out(proc) == matcalc.codegen(mlp_problem)
    compile(out(proc), "<mlp>", "exec")


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_codegen_to_file_and_import(tmp_path, mlp_problem):
    target = tmp_path / "mlp_grad.py"
    proc = run_cli("codegen", MLP, "-o", target)
    assert_ok(proc)
    assert out(proc) == ""
    assert target.read_text("utf-8") == matcalc.codegen(mlp_problem)
    module = _import(target, "mlp_grad")
    assert module.INPUTS == ("X", "T", "W1", "b1", "W2", "b2")
    assert module.WRT == ("W1", "b1", "W2", "b2")
    rng = np.random.default_rng(0)
    N, D, H, O = 5, 4, 3, 2
    inputs = dict(X=rng.standard_normal((N, D)), T=rng.standard_normal((N, O)),
                  W1=rng.standard_normal((D, H)), b1=rng.standard_normal(H),
                  W2=rng.standard_normal((H, O)), b2=rng.standard_normal(O))
    loss, grads = module.value_and_grad(**inputs)
    Z1 = inputs["X"] @ inputs["W1"] + inputs["b1"]
    Y = np.maximum(Z1, 0) @ inputs["W2"] + inputs["b2"]
    assert loss == pytest.approx(np.sum((Y - inputs["T"]) ** 2) / N)
    assert set(grads) == {"W1", "b1", "W2", "b2"}
    for name, g in grads.items():
        assert g.shape == inputs[name].shape
    # the same numbers through a subprocess-written module and the library
    _, expected = matcalc.compile(mlp_problem).value_and_grad(**inputs)
    for name in grads:
        np.testing.assert_allclose(grads[name], expected[name])


def test_codegen_wrt_inline(tmp_path):
    target = tmp_path / "ls.py"
    proc = run_cli("codegen", "-e", "sum((A @ x - b) ** 2)", "-d", "A: M x N", "-d", "x: N",
                   "-d", "b: M", "--wrt", "x", "-o", target)
    assert_ok(proc)
    module = _import(target, "ls_grad")
    assert module.WRT == ("x",)
    rng = np.random.default_rng(1)
    A, x, b = rng.standard_normal((6, 3)), rng.standard_normal(3), rng.standard_normal(6)
    (dx,) = module.backward(module.forward(A, x, b)[1])
    np.testing.assert_allclose(dx, 2 * A.T @ (A @ x - b))


# ------------------------------------------------------------------ check ---

def test_check_ok():
    proc = run_cli("check", MLP)
    assert_ok(proc)
    lines = out(proc).splitlines()
    assert lines[0].startswith("finite-difference check (")
    assert [line.split()[0] for line in lines[1:]] == ["dW1", "db1", "dW2", "db2", "value"]
    assert all(line.rstrip().endswith("ok") for line in lines[1:])


def test_check_with_dims_seed_tol():
    proc = run_cli("check", MLP, "--dims", "N=2,D=3", "--seed", "7", "--tol", "1e-5")
    assert_ok(proc)
    head = out(proc).splitlines()[0]
    assert "N=2" in head and "D=3" in head and "tolerance 1e-05" in head


def test_check_inline_domain():
    proc = run_cli("check", "-e", "logdet(S) + sum(log(x))", "-d", "S: N x N", "-d", "x: N")
    assert_ok(proc)


def _failing_check(*args, **kwargs):
    return CheckResult({"W1": 0.5, "b1": 1e-12}, 1e-6, {"N": 3}, 0.0)


def test_check_mismatch_exits_1(monkeypatch, capsys):
    # A mismatch cannot be provoked from outside a process (the derived
    # gradients are right), so force one through the library the CLI calls.
    monkeypatch.setattr(matcalc.api, "check", _failing_check)
    code = cli.main(["check", str(MLP)])
    captured = capsys.readouterr()
    assert code == cli.EXIT_MISMATCH == 1
    assert "dW1" in captured.out and "MISMATCH" in captured.out
    assert captured.err == ""


def test_check_in_process_exit_0(capsys):
    assert cli.main(["check", str(MLP)]) == 0
    assert "MISMATCH" not in capsys.readouterr().out


# -------------------------------------------------------------- bad input ---

# One problem per class of bad input: (id, source, line, column, fragments).
BAD_SOURCES = [
    ("syntax", "X: N x D\nf = sum(X +)\n", 2, 12, ["syntax error"]),
    ("unbalanced", "X: N x D\nf = sum((X)\n", 2, 12, ["unexpected end of input"]),
    ("unknown-function", "X: N x D\nf = sum(rleu(X))\n", 2, 9, ["did you mean 'relu'?"]),
    ("undeclared", "X: N x D\nf = sum(X @ W)\n", 2, 13, ["unknown name 'W'"]),
    ("matmul-shape", "X: N x D\nW1: E x H\nZ1 = X @ W1\n", 3, 8,
     ["X is N x D but W1 is E x H"]),
    ("broadcast", "X: N x D\nb: H\nf = sum(X + b)\n", 3, 11, ["X is N x D", "b is H"]),
    ("det-non-square", "A: N x D\nf = det(A)\n", 2, 5, ["square"]),
    ("inv-non-square", "A: N x D\nf = sum(inv(A))\n", 2, 9, ["square"]),
    ("logdet-non-square", "A: N x D\nf = logdet(A)\n", 2, 5, ["square"]),
    ("wrt", "X: N x D\nf = sum(X)\nwrt Y\n", 3, 5, ["wrt 'Y'"]),
    ("duplicate", "X: N x D\nX: N\nf = sum(X)\n", 2, 1, ["already declared"]),
    ("arity", "X: N x D\nf = sum(X, X)\n", 2, 5, ["takes 1 argument"]),
    ("keyword", "X: N x D\nf = sum(X, axes=0)\n", 2, 5, ["no keyword 'axes'"]),
    ("axis", "X: N x D\nf = sum(sum(X, axis=2))\n", 2, 9, ["axis 2"]),
    ("unicode", "α: N\nβ: D\nf = α @ β\n", 3, 7, ["α is N", "β is D"]),
]


@pytest.mark.parametrize("source, line, column, fragments", [c[1:] for c in BAD_SOURCES],
                         ids=[c[0] for c in BAD_SOURCES])
def test_bad_problem_file_exits_2(tmp_path, source, line, column, fragments):
    path = tmp_path / "bad.mc"
    path.write_text(source, "utf-8")
    proc = run_cli("grad", path)
    stderr = assert_bad_input(proc, *fragments)
    lines = stderr.splitlines()
    assert lines[0].startswith(f"matcalc: {path}:{line}:{column}: ")
    assert lines[1] == "    " + source.splitlines()[line - 1]
    assert lines[2] == "    " + " " * (column - 1) + "^"


@pytest.mark.parametrize("command", ["grad", "codegen", "check"])
def test_bad_input_exits_2_for_every_command(tmp_path, command):
    path = tmp_path / "bad.mc"
    path.write_text("X: N x D\nf = sum(X @ X)\n", "utf-8")
    assert_bad_input(run_cli(command, path), ":2:11:", "shape mismatch")


def test_empty_problem_exits_2(tmp_path):
    path = tmp_path / "empty.mc"
    path.write_text("# nothing here\n", "utf-8")
    assert_bad_input(run_cli("grad", path), "empty problem")


@pytest.mark.parametrize("args, fragment", [
    (["grad", "{mlp}", "--wrt", "Q"], "wrt 'Q'"),
    (["grad", "{mlp}", "--wrt", "Z1"], "intermediate"),
    (["grad", "{mlp}", "-e", "sum(X)"], "not both"),
    (["grad", "-d", "X: N"], "-d declarations go with -e"),
    (["grad"], "no problem"),
    (["grad", "-e", "sum(X)"], "unknown name 'X'"),
    (["grad", "-e", "sum(X", "-d", "X: N"], "syntax error"),
    (["check", "{mlp}", "--dims", "N=x"], "NAME=SIZE"),
    (["check", "{mlp}", "--dims", "Q=3"], "'Q'"),
    (["check", "{mlp}", "--dims", "N=0"], "positive integer"),
    (["check", "{mlp}", "--dims", "N=-1"], "--dims N=-1: a size must be a positive integer"),
    (["check", "{mlp}", "--dims", "N=3,,D=2"], "--dims has an empty item in 'N=3,,D=2'"),
])
def test_bad_options_exit_2(args, fragment):
    args = [str(MLP) if a == "{mlp}" else a for a in args]
    assert_bad_input(run_cli(*args), fragment)


def test_inline_error_names_the_expression():
    proc = run_cli("grad", "-e", "sum(X @ W)", "-d", "X: N x D", "-d", "W: H x K")
    stderr = assert_bad_input(proc, "X is N x D but W is H x K")
    assert stderr.splitlines()[1] == "    sum(X @ W)"


def test_missing_file_exits_2(tmp_path):
    missing = tmp_path / "nope.mc"
    assert_bad_input(run_cli("grad", missing), f"cannot read {missing}", "No such file")


def test_directory_exits_2(tmp_path):
    assert_bad_input(run_cli("grad", tmp_path), "cannot read")


def test_non_utf8_file_exits_2(tmp_path):
    path = tmp_path / "latin1.mc"
    path.write_bytes("X: N x D\nf = sum(X)  # café\n".encode("latin-1"))
    assert_bad_input(run_cli("grad", path), "not UTF-8")


def test_non_utf8_stdin_exits_2():
    assert_bad_input(run_cli("grad", "-", input=b"x: N\nf = sum(x) # \xff\n"), "not UTF-8")


def test_unknown_command_exits_2():
    proc = run_cli("differentiate", MLP)
    assert proc.returncode == 2
    assert "Traceback" not in err(proc)


def test_in_process_bad_input_returns_2(capsys):
    assert cli.main(["grad", "-e", "sum(X @ X)", "-d", "X: N x D"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("matcalc: <-e>:1:7: shape mismatch in '@'")


def test_cli_runs_from_another_directory(tmp_path):
    proc = run_cli("grad", os.path.relpath(MLP, ROOT), cwd=ROOT)
    assert_ok(proc)
    proc = run_cli("grad", MLP, cwd=tmp_path)
    assert_ok(proc)


# ------------------------------------------------------------------ wheel ---

def _copy_project(dest: Path) -> Path:
    """The project's sources, without build outputs, environments or VCS data."""
    import shutil
    ignore = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".hypothesis", "*.pyc")
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def _build_wheel(src: Path, out_dir: Path) -> Path:
    base = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-w", str(out_dir),
            "--quiet", "--disable-pip-version-check"]
    proc = subprocess.run(base, capture_output=True, timeout=120, cwd=src)
    if proc.returncode != 0:
        # No package index to fetch the build backend from: build with the
        # setuptools (and wheel) already installed, when they can.
        retry = subprocess.run(base + ["--no-build-isolation"], capture_output=True,
                               timeout=120, cwd=src)
        if retry.returncode != 0:
            log = (proc.stderr + retry.stderr).decode(errors="replace")
            if "satisf" in log and "setuptools" in log or "invalid command 'bdist_wheel'" in log:
                pytest.skip("no build backend available to pip in this environment")
            pytest.fail(f"pip wheel failed:\n{log}")
    wheels = list(out_dir.glob("matcalc-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_grammar_and_works_alone(tmp_path):
    import zipfile

    import lark
    import sympy

    src = _copy_project(tmp_path / "src")
    wheel = _build_wheel(src, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "matcalc/grammar/matcalc.lark" in names
        package = ROOT / "matcalc"
        modules = {f"matcalc/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
        assert modules | {"matcalc/grammar/__init__.py"} <= names  # every subpackage
        assert not any(n.startswith(("tests/", "grammar/", "examples/")) for n in names)
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "matcalc = matcalc.cli:main" in zf.read(entry_points).decode()
        unpacked = tmp_path / "unpacked"
        zf.extractall(unpacked)

    # Only the unpacked wheel and the dependencies on the path: no site
    # processing (so no editable install), run outside the source tree.
    deps = {str(Path(m.__file__).resolve().parent.parent) for m in (np, sympy, lark)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(unpacked), *sorted(deps)])
    script = (
        "import matcalc, sys\n"
        f"assert matcalc.__file__.startswith({str(unpacked)!r}), matcalc.__file__\n"
        "p = matcalc.parse('X: N x D\\nf = sum(X)')\n"
        "g = matcalc.grad(p)\n"
        "print(g)\n"
        "sys.exit(matcalc.cli.main(['grad', '-e', 'sum(x ** 2)', '-d', 'x: N']))\n"
    )
    proc = subprocess.run([sys.executable, "-S", "-c", "import matcalc.cli\n" + script],
                          capture_output=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert out(proc).splitlines() == ["# gradient of f = sum(X)", "∂f/∂X = ones(N, D)",
                                      "# gradient of f = sum(x ** 2)", "∂f/∂x = 2 * x"]


@pytest.mark.parametrize("source, dims", [
    ("x: N\nf = sum(x) * N ** 1000\n", []),                     # N ** 1000 at N = 3
    ("x: N\nf = sum(x) * 2 ** N\n", ["--dims", "N=2000"]),
    ("x: N\nf = sum(inv(outer(x, x)))\n", []),                  # a singular matrix
])
def test_check_that_cannot_evaluate_exits_2(tmp_path, source, dims):
    # the generated code overflows (or meets a singular matrix) at the sizes
    # check chose: one line saying so, never a traceback
    path = tmp_path / "p.mc"
    path.write_text(source, "utf-8")
    assert_bad_input(run_cli("check", path, *dims), "cannot be evaluated at N = ")


def test_check_tries_the_default_sizes_reversed_before_giving_up(tmp_path):
    """logdet(Xᵀ A X) is singular at the default N = 3, D = 4 (a wide X):
    check tries N = 4, D = 3; where neither order works it names the sizes
    and how to give others."""
    path = tmp_path / "p.mc"
    path.write_text("X: N x D\nA: N x N spd\nf = logdet(X.T @ A @ X)\n", "utf-8")
    proc = run_cli("check", path)
    assert proc.returncode == 0 and "(N=4, D=3;" in proc.stdout.decode("utf-8")
    # a general A: the 4 x 4 XᵀAX of rank 3 has a finite log|det| at N = 3
    # (rounding), but finite differences near it are not finite (was a nan
    # MISMATCH of a right gradient)
    path.write_text("X: N x D\nA: N x N\nf = logdet(X.T @ A @ X)\n", "utf-8")
    proc = run_cli("check", path)
    assert proc.returncode == 0 and "(N=4, D=3;" in proc.stdout.decode("utf-8")
    assert_bad_input(run_cli("check", path, "--dims", "N=3,D=4"), "not finite near these inputs")
    path.write_text("x: N\ny: N\nz: M\nf = sum(inv(outer(x, y))) + sum(z)\n", "utf-8")
    assert_bad_input(run_cli("check", path), "cannot be evaluated at N = 3, M = 4 (nor with")
    assert "--dims" in run_cli("check", path).stderr.decode("utf-8")


def test_rules_lists_every_named_rule():
    """`matcalc rules` lists the builders' identities and the simplifier's
    rules, one line each: name, what it rewrites, the identity."""
    from matcalc.ops import rulebook
    from matcalc.passes.simplify import RULES

    proc = run_cli("rules")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode("utf-8").splitlines()
    names = [line.split()[0] for line in lines]
    assert names == [r.name for r in rulebook.listing()] + [r.__name__ for r in RULES]
    assert any(line.split()[1:] == ["log", *"log(1 + exp(z)) = softplus(z)".split()]
               for line in lines)
    assert all(len(line.split()) > 3 for line in lines)  # every rule states its identity
    assert [(r.name, r.rewrites) for r in matcalc.rules()] == \
        [(line.split()[0], line.split()[1]) for line in lines]


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode().strip() == f"matcalc {matcalc.__version__}"


@pytest.mark.parametrize("command, expected", [
    (["hessian", "examples/logistic.mc"], "H_w = Xᵀ·((g₀ ⊙ (1 - g₀)) ⊙ X)"),
    (["hvp", "examples/logistic.mc"], "# Hessian-vector product of f = ∑softplus(-y ⊙ (X·w))"),
    (["jacobian", "-e", "X @ w", "-d", "X: N x D", "-d", "w: D"], "J_w = X"),
    (["grad", "examples/mlp.mc", "--steps"], "dZ₁ = X·dW₁ + db₁    [product rule; sum rule]"),
])
def test_every_command_prints_unicode(command, expected):
    """hessian, hvp, jacobian and grad --steps take --format unicode too."""
    proc = run_cli(*command, "--format", "unicode")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode("utf-8")
    assert expected in [line.strip() for line in out.splitlines()]
    plain = run_cli(*command).stdout.decode("utf-8")
    assert len(out.splitlines()) == len(plain.splitlines()) and out != plain


def test_hessian_of_many_variables_names_them_not_the_library_call():
    proc = run_cli("hessian", "examples/mlp.mc", "--wrt", "W1,b1,W2")
    message = proc.stderr.decode("utf-8")
    assert proc.returncode == 2 and "hessian(p" not in message
    assert "'W1' or 'W1,b1'" in message and "W1, b1, W2" in message


def test_hessian_without_wrt_prints_every_block():
    proc = run_cli("hessian", "examples/mlp.mc")
    out = proc.stdout.decode("utf-8")
    assert proc.returncode == 0
    assert all(f"\n{name} = " in out for name in ("H_W1", "H_W1_b2", "H_b1_W2", "H_b2"))
    assert "the blocks below the diagonal are those above" in out


def test_results_have_short_reprs(mlp_source):
    p = matcalc.parse(mlp_source)
    function = "loss = sum((relu(Z1) @ W2 + b2 - T)**2) / N"  # as written
    assert repr(p) == f"<Problem {function} wrt W1, b1, W2, b2>"
    assert repr(matcalc.grad(p)) == f"<Gradient of {function} by W1, b1, W2, b2>"
    assert repr(matcalc.hessian(p, "b2")) == f"<Hessian of {function}: H_b2>"
    with_steps = matcalc.grad(p, steps=True)  # a Gradient still, carrying its derivation
    assert isinstance(with_steps, Gradient) and repr(with_steps) == repr(matcalc.grad(p))
    assert str(with_steps) == str(matcalc.grad(p))
    assert with_steps["W1"] is matcalc.grad(p)["W1"]  # code written for grad(p) keeps working
    steps = with_steps.steps
    assert repr(steps) == f"<Derivation of the gradients of {function}: {len(steps.steps)} steps>"
    long = matcalc.problem(" + ".join(f"sum(sin(x) ** {k})" for k in range(2, 30)), x="N")
    assert len(repr(long)) < 100 and "…" in repr(long)


def test_a_closed_pipe_is_no_traceback():
    """`matcalc grad ... | head -1`: the rest of the output has no reader."""
    proc = subprocess.run(f"{shlex.quote(sys.executable)} -m matcalc.cli grad {MLP} --steps "
                          "--format latex | head -1", shell=True, capture_output=True,
                          cwd=ROOT, timeout=60)
    assert proc.stdout.decode().startswith("\\begin{aligned}")
    assert b"Traceback" not in proc.stderr and b"Error" not in proc.stderr


def test_steps_define_every_intermediate_before_use(mlp_source):
    """The derivation lists the intermediates it names (t0, t1) first."""
    p = matcalc.parse(mlp_source)
    text = str(matcalc.grad(p, steps=True).steps)
    head = text.split("forward:")[0]
    for b in matcalc.grad(p).program.forward():
        assert f"\n  {b.name} = " in head
    latex = matcalc.grad(p, steps=True).steps.latex()
    assert r"t_{0} &= \operatorname{relu}\left(Z_{1}\right)" in latex


def test_a_kronecker_layout_names_its_own_matrix_not_a_dimension():
    """`J_X: K with vec(H V) = K vec(V)` read H and K as the problem's
    dimensions; the comment names the entry itself."""
    proc = run_cli("jacobian", "-e", "H @ X", "-d", "H: K x N", "-d", "X: N x M")
    lines = proc.stdout.decode("utf-8").splitlines()
    assert "# J_X: vec stacks columns: J_X[i + K·j, m + N·n] = ∂f[i, j]/∂X[m, n]" in lines
    assert not any("K with" in line or "vec(H V)" in line for line in lines)


def test_hessian_by_a_bias_is_a_matrix():
    """The promise of docs/second-order.md: a Hessian by a vector is a matrix (2·I for the
    MLP's output bias), not the operator sum(2 / N * ones(N, O) * v, axis=0)."""
    proc = run_cli("hessian", MLP, "--wrt", "b2")
    lines = proc.stdout.decode("utf-8").splitlines()
    assert lines[-1] == "H_b2 = 2 * eye(O)" and "# H_b2[i, m] = ∂²loss/∂b2[i]∂b2[m]" in lines


@pytest.mark.parametrize("fmt", ["text", "unicode", "latex"])
def test_steps_are_shown_in_every_format(fmt, mlp_problem):
    """--steps is honoured with --format unicode and latex too."""
    from matcalc.targets.unicode import derivation_unicode
    steps = matcalc.grad(mlp_problem, steps=True).steps
    want = {"text": str(steps), "unicode": derivation_unicode(steps), "latex": steps.latex()}
    proc = run_cli("grad", MLP, "--steps", "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    assert out(proc) == want[fmt] + "\n"
    assert out(proc) != out(run_cli("grad", MLP, "--format", fmt))


# ---------------------------------------------- a new user's trial (s13) ---

@pytest.mark.parametrize("command", ["grad", "hessian", "hvp", "jacobian", "codegen", "check"])
def test_a_problem_without_variables_exits_2_for_every_command(tmp_path, capsys, command):
    # hessian raised IndexError; the others printed nothing and exited 0
    path = tmp_path / "F"
    path.write_text("f = 2\n", "utf-8")
    assert cli.main([command, str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"matcalc: {path}:1:1: no variables to differentiate by")


def test_dims_accepts_a_trailing_comma(capsys):
    assert cli.main(["check", str(MLP), "--dims", "N=3,"]) == 0
    assert "N=3" in capsys.readouterr().out


def test_an_assignment_given_to_e_says_drop_it(capsys):
    assert cli.main(["grad", "-e", "f = sum(X)", "-d", "X: N x D"]) == 2
    assert "<-e> is an expression: drop 'f ='" in capsys.readouterr().err


@pytest.mark.parametrize("data, message", [
    (b"X: N x D\nf = sum(X) \xff\n", ":2:12: not UTF-8 text (byte 20, 0xff): save it as UTF-8"),
    ("X: N\nf = sum(X)\n".encode("utf-16"), "UTF-16 text (it starts with a UTF-16 byte-order "
                                            "mark): save it as UTF-8"),
])
def test_a_file_not_in_utf8_says_where_and_what(tmp_path, capsys, data, message):
    path = tmp_path / "F"
    path.write_bytes(data)
    assert cli.main(["grad", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_against_a_file_that_exits_at_import(tmp_path, capsys):
    script = tmp_path / "exits.py"
    script.write_text("import sys\nsys.exit(5)\n", "utf-8")
    assert cli.main(["check", str(MLP), "--against", f"{script}:backward"]) == 2
    assert "importing" in capsys.readouterr().err
