"""RELION 3.1's ``relion_postprocess`` reads the half maps and the mask cryolive writes, and
agrees with cryolive's resolution and B-factor; ``relion_image_handler`` reads the sharpened map
(skips locally without RELION, fails in CI)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import starfile
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.io.maps import read_map, write_map


def test_relion_postprocess_reads_our_mask_and_maps(
    halves: Any, tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    exe = shutil.which("relion_postprocess")
    if exe is None:
        need_service("RELION", "relion_postprocess is not on PATH (make tools)")
        return
    h1 = write_map(tmp_path / "run_half1_class001_unfil.mrc", halves.half1, pixel_size_a=1.5)
    h2 = write_map(tmp_path / "run_half2_class001_unfil.mrc", halves.half2, pixel_size_a=1.5)
    ours = tmp_path / "ours"
    result = CliRunner().invoke(build_app(), ["postprocess", str(h1), str(h2), "--out", str(ours)])
    assert result.exit_code == 0, result.output
    theirs = tmp_path / "relion"
    theirs.mkdir()
    run = subprocess.run(
        [exe, "--i", h1.name, "--i2", h2.name, "--mask", str(ours / "mask.mrc"),
         "--angpix", "1.5", "--o", "relion/postprocess", "--auto_bfac", "--autob_lowres", "10"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (theirs / "postprocess.star").is_file(), run.stdout[-2000:] + run.stderr[-2000:]
    rel = starfile.read(theirs / "postprocess.star", always_dict=True)["general"]
    our = starfile.read(ours / "postprocess.star", always_dict=True)["general"]
    # RELION reports the first shell under 0.143; cryolive interpolates between shells
    assert float(our["rlnFinalResolution"]) == pytest.approx(
        float(rel["rlnFinalResolution"]), rel=0.08
    )
    assert float(our["rlnBfactorUsedForSharpening"]) == pytest.approx(
        float(rel["rlnBfactorUsedForSharpening"]), rel=0.15
    )
    # and RELION's own estimate recovers the planted B-factor
    assert -float(rel["rlnBfactorUsedForSharpening"]) == pytest.approx(100.0, rel=0.2)
    # RELION reads cryolive's sharpened map with its voxel size and values
    handler = shutil.which("relion_image_handler")
    if handler is not None:
        stats = subprocess.run(
            [handler, "--i", str(ours / "postprocess_masked.mrc"), "--stats"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        sharpened, _ = read_map(ours / "postprocess_masked.mrc")
        assert "64 x 64 x 64" in stats and "angpix = 1.5" in stats
        relion_max = float(stats.split("maxval=")[1].split(";")[0])
        assert relion_max == pytest.approx(float(sharpened.max()), rel=1e-4)


def test_the_relion_engine_of_postprocess_recovers_the_planted_bfactor(
    halves: Any, tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    """``cryolive postprocess --engine relion``: relion_mask_create at cryolive's threshold,
    then relion_postprocess; the files cryolive's engine writes, the B-factor within 20 %."""
    if shutil.which("relion_postprocess") is None or shutil.which("relion_mask_create") is None:
        need_service("RELION", "relion_postprocess is not on PATH (make tools)")
        return
    h1 = write_map(tmp_path / "half1.mrc", halves.half1, pixel_size_a=1.5)
    h2 = write_map(tmp_path / "half2.mrc", halves.half2, pixel_size_a=1.5)
    out = tmp_path / "PostProcess"
    result = CliRunner().invoke(
        build_app(), ["postprocess", str(h1), str(h2), "--out", str(out), "--engine", "relion"]
    )
    assert result.exit_code == 0, result.output
    for name in ("postprocess.mrc", "postprocess_masked.mrc", "mask.mrc"):
        volume, voxel = read_map(out / name)
        assert volume.shape == halves.half1.shape and voxel == pytest.approx(1.5, rel=1e-3), name
    mask, _ = read_map(out / "mask.mrc")
    assert float(mask.min()) >= 0.0 and float(mask.max()) == pytest.approx(1.0, abs=1e-3)
    assert 0.01 < float(mask.mean()) < 0.7  # the particle, not the box or nothing
    # read as the refine3d service reads it
    from cryolive.io.outputs.recon3d import read_fsc

    curves = read_fsc(out / "postprocess.star")
    assert {"corrected", "masked", "unmasked"} <= set(curves.curves)
    assert curves.final_resolution_a is not None and 3.0 < curves.final_resolution_a < 8.0
    assert curves.bfactor_a2 is not None and -curves.bfactor_a2 == pytest.approx(100.0, rel=0.2)
    assert "B-factor" in result.output and "RELION" in result.output
