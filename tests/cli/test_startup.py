"""Start-up of the command line: commands are imported when used, settings when needed.

Structural guards (not timings): which modules a ``cryolive`` call imports, in a fresh
interpreter, so that a heavy import crept back into the listing or into a light command fails
here rather than in the benchmark (docs/architecture.md, "Command-line start-up").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from typer.testing import CliRunner

from cryolive.cli import COMMANDS, build_app, load_command

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("numpy", "scipy", "sqlalchemy", "fastapi", "torch", "pandas", "pydantic_settings")

_PROBE = """
import json, sys
from cryolive.cli import main
sys.argv = ["cryolive", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print("\\n@@" + json.dumps(sorted(sys.modules)), end="")
"""


def _modules_after(*args: str) -> tuple[str, set[str]]:
    """The output of ``cryolive ARGS`` in a fresh interpreter, and the modules it imported."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(args))],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    output, _, modules = done.stdout.rpartition("\n@@")
    return output, {name.split(".")[0] for name in json.loads(modules)} | set(json.loads(modules))


def test_the_listing_imports_no_command_and_no_heavy_library() -> None:
    output, modules = _modules_after("--help")
    for lazy in COMMANDS:
        assert lazy.name in output
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert "cryolive.config" not in modules  # settings are built when a command needs them
    commands = {m for m in modules if m.startswith("cryolive.cli.")}
    assert not commands, sorted(commands)


def test_a_file_command_imports_its_own_module_only() -> None:
    output, modules = _modules_after("ctf", "--help")
    assert "--max-defocus" in output
    assert "cryolive.cli.ctf" in modules
    assert "cryolive.cli.pipeline" not in modules
    for heavy in ("sqlalchemy", "fastapi", "torch", "pandas", "pydantic_settings"):
        assert heavy not in modules, heavy
    assert "cryolive.config" not in modules


@pytest.mark.parametrize("lazy", COMMANDS, ids=lambda lazy: lazy.name)
def test_each_listed_line_is_the_start_of_its_commands_own_help(lazy: object) -> None:
    from cryolive.cli import Lazy

    assert isinstance(lazy, Lazy)
    command = load_command(lazy)
    assert command.name == lazy.name
    own = " ".join((command.help or "").split("\n\n")[0].split())
    assert own.startswith(lazy.help), (lazy.help, own)


def test_a_ctf_and_a_motioncorr_call_import_no_scipy_package(tmp_path: Path) -> None:
    """``import scipy.fft`` or ``scipy.ndimage`` alone cost more CPU than the work of a
    one-micrograph ``cryolive ctf`` call (docs/architecture.md): the engines take scipy's
    compiled pocketfft on its own (cryolive.engines.fft) and nothing else of scipy."""
    rng = np.random.default_rng(0)
    micrograph, movie = tmp_path / "m.mrc", tmp_path / "movie.mrc"
    with mrcfile.new(micrograph) as mrc:
        mrc.set_data(rng.normal(100.0, 10.0, (1024, 1024)).astype(np.float32))
        mrc.voxel_size = 2.0
    with mrcfile.new(movie) as mrc:
        mrc.set_data(rng.poisson(2.0, (4, 256, 256)).astype(np.float32))
    calls = (
        ["ctf", str(micrograph), "--out", str(tmp_path / "ctf")],
        ["motioncorr", str(movie), "--pixel-size", "1", "--dose-per-frame", "1",
         "--threads", "1", "--out", str(tmp_path / "mc")],
    )  # fmt: skip
    engines = ("cryolive.engines.ctf", "cryolive.engines.motion")
    for call, engine in zip(calls, engines, strict=True):
        _, modules = _modules_after(*call)
        assert engine in modules  # the command ran its engine
        assert (tmp_path / call[-1]).is_dir() and any((tmp_path / call[-1]).iterdir())
        scipy = sorted(m for m in modules if m.startswith("scipy"))
        assert scipy == ["scipy", "scipy.fft._pocketfft.pypocketfft"], (call[0], scipy)


def test_an_unknown_command_is_refused_with_the_close_names() -> None:
    result = CliRunner().invoke(build_app(), ["ctff"])
    assert result.exit_code == 2
    assert "No such command" in result.output and "'ctf'" in result.output


def test_settings_are_read_when_a_command_needs_them(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[web]\nport = 70000\n")
    # a command on files never reads the settings: a bad (existing) file does not stop it
    listing = CliRunner().invoke(build_app(), ["--config", str(bad), "ctf", "--help"])
    assert listing.exit_code == 0, listing.output
    # one that does reads it, and says what is wrong with it
    inspect = ["--config", str(bad), "epu", "inspect", str(tmp_path)]
    result = CliRunner().invoke(build_app(), inspect)
    assert result.exit_code == 2
    assert "--config" in result.output and "port" in result.output
    missing = CliRunner().invoke(build_app(), ["--config", str(tmp_path / "no.toml"), "ctf"])
    assert missing.exit_code == 2 and "no such file" in missing.output
