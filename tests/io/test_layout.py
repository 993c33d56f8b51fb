"""Where a movie's outputs of one stage lie, from its outputs of another (the same run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryolive.io.layout import job_dir, output_base, sibling_base


def test_the_ctf_base_of_a_motion_corrected_micrograph(tmp_path: Path) -> None:
    stem = "Images-Disc1/GridSquare_8/Data/FoilHole_9_fractions"
    micrograph = output_base(tmp_path, "MotionCorr", 17, stem).with_suffix(".mrc")
    assert micrograph.parent.is_relative_to(tmp_path / "MotionCorr" / "job171")
    ctf = sibling_base(micrograph, "CtfFind")
    assert ctf == job_dir(tmp_path, "CtfFind", 17) / stem == tmp_path / "CtfFind/job172" / stem
    assert not ctf.parent.exists()  # found, not created


@pytest.mark.parametrize(
    "path",
    [
        "/v/processed/raw/FoilHole_9.mrc",  # no stage folder
        "/v/processed/raw/MotionCorr/job172/FoilHole_9.mrc",  # a job number of another stage
        "/v/processed/raw/MotionCorr/jobX/FoilHole_9.mrc",
        "/v/processed/raw/MotionCorr/job171",  # the job folder itself
    ],
)
def test_paths_not_laid_out_by_a_run_give_none(path: str) -> None:
    assert sibling_base(path, "CtfFind") is None


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="stage"):
        sibling_base("/p/MotionCorr/job011/a.mrc", "Ctffind4")
