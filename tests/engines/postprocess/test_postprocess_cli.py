"""``cryolive postprocess`` on half-map files: the files RELION's postprocess writes, with the
planted B-factor and a sensible resolution in postprocess.star; bad files get a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import starfile
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.io.maps import read_map, write_map


def _write_halves(halves: Any, folder: Path) -> tuple[Path, Path]:
    h1 = write_map(folder / "run_half1_class001_unfil.mrc", halves.half1, pixel_size_a=1.5)
    h2 = write_map(folder / "run_half2_class001_unfil.mrc", halves.half2, pixel_size_a=1.5)
    return h1, h2


def test_postprocess_command_writes_relion_files(halves: Any, tmp_path: Path) -> None:
    h1, h2 = _write_halves(halves, tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(build_app(), ["postprocess", str(h1), str(h2), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "resolution" in result.output and "fitted" in result.output
    for name in ("postprocess.mrc", "postprocess_masked.mrc", "mask.mrc", "postprocess_fsc.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "postprocess_fsc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sharpened, voxel = read_map(out / "postprocess.mrc")
    assert voxel == pytest.approx(1.5) and sharpened.shape == halves.half1.shape
    star = starfile.read(out / "postprocess.star", always_dict=True)
    general, fsc = star["general"], star["fsc"]
    # RELION's sign: negative when the map is sharpened
    assert -float(general["rlnBfactorUsedForSharpening"]) == pytest.approx(100.0, rel=0.2)
    assert 2 * 1.5 < float(general["rlnFinalResolution"]) < 10.0
    assert list(fsc["rlnSpectralIndex"]) == list(range(33))
    assert fsc["rlnFourierShellCorrelationCorrected"].iloc[1] > 0.9
    assert "guinier" in star


def test_postprocess_command_with_mask_and_bfactor(halves: Any, tmp_path: Path) -> None:
    h1, h2 = _write_halves(halves, tmp_path)
    mask = np.zeros(halves.half1.shape, np.float32)
    mask[16:48, 16:48, 16:48] = 1.0
    m = write_map(tmp_path / "box_mask.mrc", mask, pixel_size_a=1.5)
    out = tmp_path / "out"
    args = ["postprocess", str(h1), str(h2), "--out", str(out), "--mask", str(m)]
    result = CliRunner().invoke(build_app(), [*args, "--bfactor", "80"])
    assert result.exit_code == 0, result.output
    star = starfile.read(out / "postprocess.star", always_dict=True)
    assert float(star["general"]["rlnBfactorUsedForSharpening"]) == pytest.approx(-80.0)
    written, _ = read_map(out / "mask.mrc")
    np.testing.assert_array_equal(written, mask)
    assert "guinier" not in star


def test_postprocess_command_refuses_bad_input(halves: Any, tmp_path: Path) -> None:
    h1, _ = _write_halves(halves, tmp_path)
    small = write_map(tmp_path / "small.mrc", halves.half2[:32, :32, :32], pixel_size_a=1.5)
    app, out = build_app(), str(tmp_path / "out")
    missing = CliRunner().invoke(
        app,
        ["postprocess", str(h1), str(tmp_path / "no.mrc"), "--out", out],
        env={"COLUMNS": "300"},
    )
    assert missing.exit_code == 2 and "no such file" in missing.output
    shape = CliRunner().invoke(app, ["postprocess", str(h1), str(small), "--out", out])
    assert shape.exit_code == 1 and "differs" in shape.output
    bad = write_map(tmp_path / "bad_mask.mrc", np.full(halves.half1.shape, 3.0), pixel_size_a=1.5)
    masked = CliRunner().invoke(
        app, ["postprocess", str(h1), str(h1), "--out", out, "--mask", str(bad)]
    )
    assert masked.exit_code == 1 and "mask" in masked.output
    coarse = write_map(tmp_path / "coarse_mask.mrc", np.ones(halves.half1.shape), pixel_size_a=3.0)
    args = ["postprocess", str(h1), str(h1), "--out", out, "--mask", str(coarse)]
    voxel = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert voxel.exit_code == 2 and "voxel 3 Å but the half maps' is 1.5 Å" in voxel.output
