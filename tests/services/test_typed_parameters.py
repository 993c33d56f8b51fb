"""Each service handler takes its settings from the run's typed sections, carried by the recipe
from RunParameters: a value set on the run is the value the engine receives."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from cryolive.errors import BadInputError
from cryolive.messaging.recipe import fill, load_recipe
from cryolive.messaging.service import Context
from cryolive.params import RunParameters, build_parameters
from cryolive.pipeline.runtime import recipe_path, start_pipeline
from cryolive.records import MotionCorrectionRecord
from cryolive.services import ctf, motioncorr, pick
from cryolive.services.messages import CtfMessage, MotionCorrMessage, PickMessage, WriteResults

RECIPE = load_recipe(recipe_path("spa-preprocess"))
CONTEXT = Context(key="k", recipe="spa-preprocess", step="s", attempt=0, delivery_count=0)


class Reached(Exception):
    """Raised by a stand-in engine once it has seen its arguments."""


def _run() -> RunParameters:
    return build_parameters(
        collection={"pixel_size_a": 0.83, "dose_per_frame_e_per_a2": 1.1, "voltage_kv": 200.0},
        request={
            "patches_x": 7,
            "patches_y": 3,
            "bfactor_a2": 90.0,
            "frames": 12,
            "cs_mm": 0.01,
            "amplitude_contrast": 0.1,
            "ctf_min_resolution_a": 25.0,
            "ctf_max_resolution_a": 4.0,
            "ctf_min_defocus_a": 5000.0,
            "ctf_max_defocus_a": 30000.0,
            "ctf_defocus_step_a": 250.0,
            "fit_phase_shift": True,
            "ctf_min_phase_shift_deg": 20.0,
            "ctf_max_phase_shift_deg": 120.0,
            "ctf_phase_shift_step_deg": 5.0,
            "ctf_known_astigmatism_a": 600.0,
            "ctf_known_astigmatism_angle_deg": 35.0,
            "particle_diameter_min_a": 90.0,
            "particle_diameter_max_a": 140.0,
            "pick_threshold": 3.5,
            "box_px": 96,
        },
    )


def _message(step: str, tmp_path: Path) -> dict[str, Any]:
    values = {
        **_run().values(),
        "movie_path": str(tmp_path / "m.tiff"),
        "data_collection_id": 1,
        "program_id": 7,
        "project_dir": str(tmp_path / "processed"),
        "movie_stem": "m",
        "micrograph_path": str(tmp_path / "m.mrc"),
        "micrograph_pixel_size_a": 1.66,
        "defocus_u_a": 15000.0,
        "defocus_v_a": 14000.0,
        "astigmatism_angle_deg": 10.0,
    }
    filled: dict[str, Any] = fill(RECIPE.steps[step].parameters, values)
    return filled


def test_motion_correction_uses_the_runs_motion_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def read_movie(path: str, *, expected_frames: int | None, eer_group: int | None) -> Any:
        seen["frames"] = expected_frames
        return np.zeros((12, 8, 8), np.float32)

    def correct_motion(frames: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise Reached

    monkeypatch.setattr(motioncorr, "read_movie", read_movie)
    monkeypatch.setattr(motioncorr, "correct_motion", correct_motion)
    message = MotionCorrMessage.model_validate(_message("motioncorr", tmp_path))
    with pytest.raises(Reached):
        motioncorr.correct(message, CONTEXT)
    assert seen["frames"] == 12 and seen["patches"] == (7, 3) and seen["bfactor_a2"] == 90.0
    assert seen["voltage_kv"] == 200.0 and seen["pixel_size_a"] == 0.83


def test_the_patches_recorded_are_those_used_not_those_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 7 x 3 asked of a small, weak movie (0.25 e/px per frame over a 256² blob pattern):
    # too little signal per patch, so the engine aligns whole frames only
    rng = np.random.default_rng(0)
    pattern = 1.0 + 0.3 * ndimage.gaussian_filter(rng.standard_normal((256, 256)), 3.0)
    frames = rng.poisson(0.25 * np.clip(pattern, 0, None), (12, 256, 256)).astype(np.float32)
    monkeypatch.setattr(motioncorr, "read_movie", lambda path, **kwargs: frames)
    message = MotionCorrMessage.model_validate(_message("motioncorr", tmp_path))
    emits = motioncorr.correct(message, CONTEXT)
    written = emits[0].result
    assert isinstance(written, WriteResults)
    record = written.records[0]
    assert isinstance(record, MotionCorrectionRecord)
    assert (message.motion.patches_x, message.motion.patches_y) == (7, 3)
    assert (record.patches_used_x, record.patches_used_y) == (1, 1)  # whole frame: one patch
    assert record.comments is not None and len(record.comments) <= 255  # ISPyB's column


def test_ctf_uses_the_runs_ctf_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def estimate_ctf(image: Any, *, optics: Any, search: Any) -> Any:
        seen.update(optics=optics, search=search)
        raise Reached

    monkeypatch.setattr(ctf, "read_micrograph", lambda path: (np.zeros((1024, 1024)), 1.66))
    monkeypatch.setattr(ctf, "estimate_ctf", estimate_ctf)
    message = CtfMessage.model_validate(_message("ctf", tmp_path))
    with pytest.raises(Reached):
        ctf.estimate(message, CONTEXT)
    optics, search = seen["optics"], seen["search"]
    assert (optics.cs_mm, optics.amplitude_contrast, optics.voltage_kv) == (0.01, 0.1, 200.0)
    assert (search.min_res_a, search.max_res_a) == (25.0, 4.0)
    assert (search.min_defocus_a, search.max_defocus_a) == (5000.0, 30000.0)
    assert search.defocus_step_a == 250.0
    assert search.fit_phase_shift is True
    assert (search.min_phase_shift_deg, search.max_phase_shift_deg) == (20.0, 120.0)
    assert search.phase_shift_step_deg == 5.0
    assert (search.known_astigmatism_a, search.known_astigmatism_angle_deg) == (600.0, 35.0)


def test_ctf_parameters_out_of_order_are_refused() -> None:
    with pytest.raises(BadInputError, match="min_phase_shift_deg"):
        build_parameters(
            collection={},
            request={"ctf_min_phase_shift_deg": 90.0, "ctf_max_phase_shift_deg": 30.0},
        )
    with pytest.raises(BadInputError, match="defocus_step_a"):
        build_parameters(collection={}, request={"ctf_defocus_step_a": 0.0})


def test_picking_uses_the_runs_picking_and_extract_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def pick_log(image: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return SimpleNamespace(x_px=np.zeros(0), y_px=np.zeros(0))

    def extract_particles(image: Any, x: Any, y: Any, **kwargs: Any) -> Any:
        seen["box_px"] = kwargs["box_px"]
        raise Reached

    monkeypatch.setattr(pick, "read_micrograph", lambda path: (np.zeros((64, 64)), 1.66))
    monkeypatch.setattr(pick, "pick_log", pick_log)
    monkeypatch.setattr(pick, "extract_particles", extract_particles)
    message = PickMessage.model_validate(_message("pick", tmp_path))
    with pytest.raises(Reached):
        pick.pick(message, CONTEXT)
    assert (seen["diameter_min_a"], seen["diameter_max_a"]) == (90.0, 140.0)
    assert seen["threshold"] == 3.5 and seen["box_px"] == 96
    assert (message.ctf.cs_mm, message.voltage_kv) == (0.01, 200.0)  # for the STAR optics


def test_a_message_without_its_section_is_refused() -> None:
    fields = {
        "movie_path": "/m.tiff",
        "data_collection_id": 1,
        "program_id": 7,
        "project_dir": "/p",
        "movie_stem": "m",
        "micrograph_path": "/m.mrc",
        "micrograph_pixel_size_a": 1.0,
        "voltage_kv": 300.0,
    }
    with pytest.raises(ValueError, match="ctf"):
        CtfMessage.model_validate(fields)  # no silent default: the run says what the CTF is
    with pytest.raises(ValueError, match="Extra inputs"):
        CtfMessage.model_validate(fields | {"ctf": {}, "cs_mm": 2.0})  # a flat name is a typo


@pytest.mark.parametrize(
    ("parameters", "said"),
    [
        ({"class2d_min_particle": 300}, "did you mean 'class2d_min_particles'?"),
        ({"particle_diameter_min_a": 200.0}, "diameter_min_a must not exceed diameter_max_a"),
    ],
)
def test_the_pipeline_does_not_start_with_parameters_that_make_no_run(
    tmp_path: Path, parameters: dict[str, object], said: str
) -> None:
    database = tmp_path / "never.sqlite"
    with pytest.raises(BadInputError, match=re.escape(said)):
        start_pipeline(
            database_url=f"sqlite:///{database}",
            broker_url="memory://never",
            visits=[],
            parameters=parameters,
        )
    assert not database.exists()  # refused before anything was built
