"""The krylovlab command line (click's CliRunner, plus real subprocess runs)."""

import re
import shutil
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner

import krylovlab.cli as cli_mod
from krylovlab import gallery
from krylovlab.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _rows(output):
    """Parse the markdown table: {solver word: (method, iterations, relres, status)}."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].split()[0] in ("krylovlab", "scipy"):
            rows[cells[0].split()[0]] = (cells[1], int(cells[3]), float(cells[4]), cells[5])
    return rows


def test_group_help_lists_commands():
    res = run("--help")
    assert res.exit_code == 0
    for word in ("solve", "methods", "krylovlab solve"):
        assert word in res.output
    assert run("-h").output == res.output


def test_solve_help_is_readable():
    res = run("solve", "--help")
    assert res.exit_code == 0
    for word in ("Problems", "poisson2d", "convdiff", "--method", "--rtol", "--maxiter", "FILE"):
        assert word in res.output


def test_default_solve_is_poisson2d_with_cg(monkeypatch):
    # the real default is 256 x 256; shrink it so the test stays fast
    desc, n, method = cli_mod.PROBLEMS["poisson2d"]
    assert (n, method) == (256, "cg")
    monkeypatch.setitem(cli_mod.PROBLEMS, "poisson2d", (desc, 20, method))
    res = run("solve")
    assert res.exit_code == 0, res.output
    assert "poisson2d (n=20" in res.output and "400 unknowns" in res.output
    rows = _rows(res.output)
    assert set(rows) == {"krylovlab", "scipy"}
    kl, sc = rows["krylovlab"], rows["scipy"]
    assert kl[0] == "cg" and sc[0] == "cg" and kl[3] == "RTOL" and sc[3] == "converged"
    assert kl[2] <= 1e-8 and sc[2] <= 1e-8  # true residuals, recomputed by the CLI
    assert abs(kl[1] - sc[1]) <= 2


def test_solve_reports_true_residual_independently(tmp_path):
    a = gallery.poisson((9, 9))
    path = tmp_path / "p.mtx"
    gallery.save_mtx(path, a)
    res = run("solve", str(path), "--method", "cg", "--rtol", "1e-6", "--seed", "3")
    assert res.exit_code == 0, res.output
    rows = _rows(res.output)
    b = np.random.default_rng(3).uniform(0.0, 1.0, a.shape[0])
    x = np.linalg.solve(a.toarray(), b)
    assert np.linalg.norm(b - a @ x) / np.linalg.norm(b) < 1e-12  # the system is well posed
    assert 0 < rows["krylovlab"][2] <= 1e-6
    assert "81 unknowns" in res.output


def test_solve_options_maxiter_no_scipy_and_blas_modes():
    res = run("solve", "-p", "poisson1d", "--n", "200", "--maxiter", "5", "--no-scipy")
    assert res.exit_code == 0
    rows = _rows(res.output)
    assert set(rows) == {"krylovlab"} and rows["krylovlab"][1] == 5 and rows["krylovlab"][3] == "MAXITER"
    assert "did not converge" in res.output
    for mode in ("installed", "best"):
        res = run("solve", "-p", "poisson3d", "--n", "6", "--peer-blas", mode, "--repeat", "2")
        assert res.exit_code == 0 and "scipy BLAS threads: " + mode in res.output


def test_auto_method_on_a_file_says_what_it_chose(tmp_path):
    path = tmp_path / "h.mtx"
    gallery.save_mtx(path, gallery.anisotropic_diffusion(8))
    res = run("solve", str(path))
    assert res.exit_code == 0, res.output
    assert "auto -> cg" in res.output


def test_nonsymmetric_problem_runs_or_says_gmres_is_missing():
    ok, missing = cli_mod.available_methods()
    res = CliRunner().invoke(cli, ["solve", "-p", "convdiff", "--n", "10"])
    if "gmres" in ok:
        assert res.exit_code == 0, res.output
        assert _rows(res.output)["krylovlab"][0] == "gmres"
    else:
        assert res.exit_code == 2 and "not available in this installation" in res.output


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["solve", "--problem", "poisson9d"], 2, "Invalid value for '--problem'"),
        (["solve", "--method", "nosuch", "--n", "4"], 2, "unknown method 'nosuch'; valid methods: auto"),
        (["solve", "missing.mtx"], 2, "does not exist"),
        (["solve", "--n", "0"], 2, "Invalid value for '--n'"),
        (["solve", "--rtol", "-1"], 2, "Invalid value for '--rtol'"),
        (["nosuch"], 2, "No such command"),
    ],
)
def test_bad_arguments_give_clear_errors(args, code, message):
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == code
    assert message in res.output


def test_file_errors(tmp_path):
    bad = tmp_path / "bad.mtx"
    bad.write_text("not a matrix\n")
    res = CliRunner().invoke(cli, ["solve", str(bad)])
    assert res.exit_code == 1 and "not a Matrix Market file" in res.output
    rect = tmp_path / "rect.mtx"
    gallery.save_mtx(rect, np.ones((2, 3)))
    res = CliRunner().invoke(cli, ["solve", str(rect)])
    assert res.exit_code == 1 and "square" in res.output
    good = tmp_path / "good.mtx"
    gallery.save_mtx(good, gallery.poisson((3,)))
    res = CliRunner().invoke(cli, ["solve", str(good), "--problem", "poisson2d"])
    assert res.exit_code == 2 and "either FILE or --problem" in res.output
    res = CliRunner().invoke(cli, ["solve", str(good), "--n", "5"])
    assert res.exit_code == 2 and "--n applies" in res.output


def test_methods_command():
    res = run("methods")
    assert res.exit_code == 0
    names = res.output.split()
    assert "auto" in names and "cg" in names


@click.command("hello")
def _hello():
    """Say hello (a lazily registered test subcommand)."""
    click.echo("hello from a lazy subcommand")


def test_lazy_subcommands(monkeypatch):
    monkeypatch.setitem(cli.lazy_subcommands, "hello", "test_cli:_hello")
    monkeypatch.setitem(cli.lazy_subcommands, "ghost", "krylovlab.no_such_module:cmd")
    res = run("--help")
    assert "hello" in res.output and "ghost" not in res.output
    assert run("hello").output.strip() == "hello from a lazy subcommand"
    assert CliRunner().invoke(cli, ["ghost"]).exit_code == 2


def test_module_entry_point_subprocess():
    proc = subprocess.run([sys.executable, "-m", "krylovlab.cli", "solve", "--n", "12", "-p", "poisson2d"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\| krylovlab \| cg \|", proc.stdout)


def test_console_script_subprocess():
    exe = shutil.which("krylovlab")
    if exe is None:
        pytest.skip("the krylovlab console script is not installed (pip install -e .)")
    proc = subprocess.run([exe, "solve", "--n", "12", "--no-scipy"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| krylovlab | cg |" in proc.stdout


def test_lazy_subcommand_with_missing_dependency_is_explained(monkeypatch, tmp_path):
    (tmp_path / "kl_needs_missing_dep.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.lazy_subcommands, "needy", "kl_needs_missing_dep:cmd")
    res = run("--help")
    assert res.exit_code == 0 and "needy" in res.output and "unavailable here" in res.output
    res = CliRunner().invoke(cli, ["needy", "--some-option"])
    assert res.exit_code == 1 and "no_such_dependency_xyz" in res.output
