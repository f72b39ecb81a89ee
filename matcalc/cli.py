"""The `matcalc` command: a thin shell over the library.

    matcalc grad PROBLEM [--wrt W1,b1] [--format text|latex]
    matcalc hessian PROBLEM --wrt w    (hvp, jacobian likewise)
    matcalc codegen PROBLEM [-o out.py] [--target numpy|array-api|torch|jax] [--hessian w]
                            [--hvp] [--jacobian [x]]
    matcalc check PROBLEM [--dims N=5,D=3] [--inputs data.npz] [--tol 1e-6] [--seed 0]
                          [--against M:F]

PROBLEM is a file (`-` for standard input) or `-e EXPR -d DECL ...`. Bad
input prints one message (with line:col and a caret) and exits with 2; a
failed check exits with 1.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

from ._version import __version__

EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    from .targets import CODE_TARGETS

    parser = argparse.ArgumentParser(
        prog="matcalc", description="Closed-form matrix gradients, as text, "
        "LaTeX and NumPy code, checked numerically.")
    parser.add_argument("--version", action="version", version=f"matcalc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("problem", nargs="?", metavar="PROBLEM",
                         help="a problem file, or - for standard input")
        sub.add_argument("-e", "--expr", help="the function, inline (instead of PROBLEM)")
        sub.add_argument("-d", "--decl", action="append", default=[], metavar="DECL",
                         help="a declaration such as 'X: N x D' (with -e; repeatable)")
        sub.add_argument("--wrt", action="append",
                         help="variables to differentiate by, e.g. W1,b1 (or --wrt W1 --wrt b1)")
        return sub

    grad = command("grad", "print the gradients")
    grad.add_argument("--format", choices=("text", "latex", "unicode"), default="text")
    grad.add_argument("--steps", action="store_true",
                      help="show the derivation step by step")
    for name, help in (("hessian", "print the Hessian (--wrt w, or x,y for a mixed block;"
                                   " every block without --wrt)"),
                       ("hvp", "print the Hessian-vector products"),
                       ("jacobian", "print the Jacobian of the function")):
        command(name, help).add_argument("--format", choices=("text", "latex", "unicode"),
                                         default="text")
    codegen = command("codegen", "write a module with forward/backward (NumPy, array API, torch, JAX)")
    codegen.add_argument("-o", "--output", help="file to write (default: standard output)")
    codegen.add_argument("--target", choices=tuple(CODE_TARGETS), default="numpy",
                         help="the array library the code runs on: numpy (default), "
                              "array-api (any library of the array API standard, via "
                              "array-api-compat), torch or jax")
    codegen.add_argument("--hessian", metavar="W", help="add hessian(**inputs) by W (or x,y)")
    codegen.add_argument("--hvp", action="store_true", help="add hvp(v, /, **inputs)")
    codegen.add_argument("--jacobian", nargs="?", const=True, metavar="X",
                         help="add jacobian(**inputs) (by X, default every wrt variable)")
    check = command("check", "compare the gradients with finite differences")
    check.add_argument("--dims", default="", help="sizes, e.g. N=5,D=3 (default: small)")
    check.add_argument("--tol", type=float, default=1e-6, help="max relative error")
    check.add_argument("--seed", type=int, default=0, help="random seed for the inputs")
    check.add_argument("--inputs", metavar="FILE.npz",
                       help="check at these inputs (np.savez(FILE, X=X, ...)); they set the "
                            "sizes, and the inputs not in the file are drawn at random")
    check.add_argument("--against", metavar="MODULE:FUNCTION",
                       help="check a hand-written backward function (module:function or "
                            "file.py:function) against the derived gradients")
    commands.add_parser("rules", help="list the named rewrite rules",
                        description="list the named rewrite rules")
    return parser


# The most a problem file may hold (a problem is at most 50,000 tokens; this
# bounds what is read before that count, so /dev/zero is refused, not read).
MAX_BYTES = 8 * 2 ** 20


def _read_problem(args):
    from .api import parse
    from .errors import MatcalcError

    if args.expr is not None:
        if args.problem is not None:
            raise MatcalcError("give either a PROBLEM file or -e EXPR, not both")
        return _inline(args.expr, args.decl)
    if args.decl:
        raise MatcalcError("-d declarations go with -e EXPR")
    if args.problem is None:
        raise MatcalcError("no problem: give a PROBLEM file or -e EXPR -d DECL ...")
    try:
        if args.problem == "-":
            data, name = sys.stdin.buffer.read(MAX_BYTES + 1), "<stdin>"
        else:
            with open(args.problem, "rb") as handle:
                data, name = handle.read(MAX_BYTES + 1), args.problem
    except OSError as err:
        raise MatcalcError(f"cannot read {args.problem}: {err.strerror}") from None
    if len(data) > MAX_BYTES:
        raise MatcalcError(f"{name}: larger than {MAX_BYTES // 2 ** 20} MiB; a problem is "
                           "a few lines of text")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise MatcalcError(f"{name}: UTF-16 text (it starts with a UTF-16 byte-order mark): "
                           "save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[:err.start].decode("utf-8", "replace")
        line, column = before.count("\n") + 1, err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise MatcalcError(f"{name}:{line}:{column}: not UTF-8 text (byte {err.start}, "
                           f"0x{data[err.start]:02x}): save it as UTF-8") from None
    return parse(text, name)


def _inline(expr: str, decls: list[str]):
    """The problem of `-d DECL ... -e EXPR`, read as the lines DECL ...
    and `f = EXPR`; an error points into the argument it is in: `<-e>:1:5`
    is the fifth character of EXPR, `<-d 2>` the second -d."""
    from .frontend.parser import parse_pieces

    pieces = [(f"<-d {k}>", "", d) for k, d in enumerate(decls, 1)]
    return parse_pieces([*pieces, ("<-e>", "f = ", expr)], "<-e>")


def _dims(text: str) -> dict[str, int]:
    from .errors import MatcalcError

    out = {}
    text = text.strip().removesuffix(",")  # N=5,D=3, as a list may end
    for item in (s.strip() for s in text.split(",")) if text else ():
        name, _, value = (s.strip() for s in item.partition("="))
        if not item:
            raise MatcalcError(f"--dims has an empty item in '{text}': write N=5,D=3")
        if not name or not re.fullmatch(r"-?[0-9]+", value):
            raise MatcalcError(f"--dims expects NAME=SIZE pairs like N=5,D=3 (sizes positive "
                               f"integers), got '{item}'")
        if name in out:
            raise MatcalcError(f"--dims gives {name} twice")
        if int(value) < 1:
            raise MatcalcError(f"--dims {name}={value}: a size must be a positive integer")
        out[name] = int(value)
    return out


def _options(args) -> None:
    """Refuse a tolerance that is not a positive number, a negative seed."""
    from .errors import MatcalcError

    if not (math.isfinite(args.tol) and args.tol > 0):
        raise MatcalcError(f"--tol must be a positive number, got {args.tol:g}")
    if args.seed < 0:
        raise MatcalcError(f"--seed must be a non-negative integer, got {args.seed}")


def _write(path: str, source: str) -> None:
    from .errors import MatcalcError

    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(source)
    except OSError as err:
        raise MatcalcError(f"cannot write {path}: {err.strerror}") from None


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "rules":
        from .api import rules
        listed = rules()
        width = [max(len(r[k]) for r in listed) for k in (0, 1)]
        for name, rewrites, identity in listed:
            print(f"{name:<{width[0]}}  {rewrites:<{width[1]}}  {identity}")
        return 0
    if args.wrt is not None:  # --wrt W1 --wrt b1 is --wrt W1,b1
        args.wrt = ",".join(args.wrt)
    problem = _read_problem(args)
    if args.command in ("hessian", "hvp", "jacobian"):
        from . import api
        result = getattr(api, args.command)(problem, args.wrt)
        if args.format == "unicode":
            from .targets.unicode import second_order_unicode
            print(second_order_unicode(result))
        else:
            print(result.latex() if args.format == "latex" else str(result))
        return 0
    if args.wrt is not None:
        problem = problem.with_wrt(args.wrt)
    if args.command == "grad":
        from .api import grad
        g = grad(problem, steps=args.steps)
        shown = g.steps if args.steps else g
        if args.format == "unicode":
            from .targets.unicode import derivation_unicode, gradient_unicode
            print(derivation_unicode(shown) if args.steps else gradient_unicode(g))
        else:
            print(shown.latex() if args.format == "latex" else str(shown))
        return 0
    if args.command == "codegen":
        from .api import codegen
        source = codegen(problem, target=args.target, hessian=args.hessian, hvp=args.hvp,
                         jacobian=args.jacobian)
        if args.output:
            _write(args.output, source)
        else:
            sys.stdout.write(source)
        return 0
    _options(args)
    inputs = None
    if args.inputs:
        from .checks.inputs import load
        inputs = load(args.inputs)
    if args.against:
        from .checks.against import check_against
        result = check_against(problem, args.against, dims=_dims(args.dims),
                               seed=args.seed, tol=args.tol, inputs=inputs)
        print(result)
        return 0 if result.ok else EXIT_MISMATCH
    from .api import check
    result = check(problem, dims=_dims(args.dims), inputs=inputs, seed=args.seed, tol=args.tol)
    print(result)
    return 0 if result.ok else EXIT_MISMATCH


def main(argv: list[str] | None = None) -> int:
    from .errors import MatcalcError

    for stream in (sys.stdout, sys.stderr):  # ∂ and ᵀ on any terminal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return run(argv)
    except MatcalcError as err:
        print(f"matcalc: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `matcalc grad ... | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # so the interpreter's final flush is quiet
        return 0


if __name__ == "__main__":
    sys.exit(main())
