"""Diamond's step parameter names -> cryolive's message fields: the table, on every real recipe,
in `recipe show`, and at run time (a cryolive service taking a Zocalo step in Diamond's names)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from cryolive.messaging import Service, Transport, Worker
from cryolive.messaging.dlq import list_dead
from cryolive.messaging.recipe import fill_recipe, load_recipe, recipe_from_zocalo
from cryolive.messaging.service import Context
from cryolive.messaging.zocalo import (
    ZocaloTransport,
    cryolive_service,
    parameter_map,
    parse_zocalo,
    service_map,
    start_zocalo,
    translate,
)
from cryolive.params import MotionParameters
from cryolive.services import pipeline_registry
from tests.messaging.test_zocalo import REAL, running, show, take, wait_for

PREPROCESS = {  # start parameters of em-spa-preprocess, as Murfey gives them
    "dcid": 17, "foil_hole_id": 3, "image_number": 5, "movie": "/dls/m01/raw/FoilHole_5.tiff",
    "autoproc_program_id": 41, "do_icebreaker_jobs": "True", "fm_dose": 1.25, "fm_int_file": "",
    "gain_ref": "/dls/m01/raw/gain.mrc", "mc_uuid": 7, "ft_bin": 1, "mrc_out": "/p/mc.mrc",
    "picker_uuid": 8, "pixel_size": 0.83, "kv": 300, "particle_diameter": 160.0,
    "cryolo_model_weights": "w.h5", "session_id": 2, "feedback_queue": "murfey_feedback",
}  # fmt: skip


@pytest.fixture
def zocalo_recipes(need_service: Callable[[str, str], None]) -> None:
    if not REAL:
        need_service("shared Zocalo recipes", "not found")


def test_every_parameter_of_every_real_recipe_is_mapped_or_marked_unused(
    zocalo_recipes: None,
) -> None:
    registry = pipeline_registry("sqlite://")
    steps_run_by_cryolive = 0
    for path in REAL:
        recipe = load_recipe(path)
        for sid, step in recipe.steps.items():
            runner = cryolive_service(step.service, service_map(), set(registry))
            if runner is None:
                continue
            steps_run_by_cryolive += 1
            found = translate(
                step.service, step.parameters, table=parameter_map(), model=registry[runner].message
            )
            assert found.unknown == [], f"{path.name} step {sid}"
            assert set(found.renamed) | set(found.ignored) == set(step.parameters)
    assert steps_run_by_cryolive >= 10


def test_motioncorr_step_of_the_real_preprocess_recipe_in_cryolive_fields(
    zocalo_recipes: None,
) -> None:
    recipe = fill_recipe(load_recipe(next(p for p in REAL if "preprocess" in p.name)), PREPROCESS)
    step = recipe.steps["2"]
    model = pipeline_registry("sqlite://")["motioncorr"].message
    found = translate(step.service, step.parameters, table=parameter_map(), model=model)
    assert found.fields == {
        "movie_path": "/dls/m01/raw/FoilHole_5.tiff",
        "program_id": 41,
        "pixel_size_a": 0.83,
        "dose_per_frame_e_per_a2": 1.25,
        "voltage_kv": 300,
        "motion": {"gain_path": "/dls/m01/raw/gain.mrc"},
    }
    assert found.renamed["gain_ref"] == "motion.gain_path"
    assert "mrc_out" in found.ignored and "submit_to_slurm" in found.ignored
    # what Diamond's step does not carry, cryolive takes from the environment
    assert found.needed == ["data_collection_id", "project_dir", "movie_stem"]


def test_patterns_per_service_entries_and_unknown_names() -> None:
    table = parameter_map({"CTFFind.pixel_size": "micrograph_pixel_size_a", "bin": ""})
    found = translate(
        "MotionCorr",
        {"patch_sizes": {"x": 6, "y": 4}, "pixel_size": 1.1, "bin": 2, "frobnicate": 1},
        table=table,
    )
    assert found.fields == {
        "motion": {"patches_x": 6, "patches_y": 4},
        "pixel_size_a": 1.1,
        "frobnicate": 1,  # passed on under its own name: the model refuses it by name
    }
    assert found.unknown == ["frobnicate"] and "bin" in found.ignored
    ctf = translate("CTFFind", {"pixel_size": 1.1}, table=table)
    assert ctf.fields == {"micrograph_pixel_size_a": 1.1}


def test_recipe_show_prints_the_mapping_and_strict_fails_on_unknown_names(
    zocalo_recipes: None, tmp_path: Path
) -> None:
    path = next(p for p in REAL if "preprocess" in p.name)
    params = [a for k, v in PREPROCESS.items() for a in ("--param", f"{k}={json.dumps(v)}")]
    result = show(str(path), "--strict", *params)
    assert result.exit_code == 0, result.output
    assert "gain_ref -> motion.gain_path" in result.output
    assert "movie -> movie_path" in result.output
    assert "UNKNOWN" not in result.output
    data = json.loads(path.read_text())
    data["8"]["parameters"]["frobnicate"] = 3
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    result = show(str(broken), "--strict", *params)
    assert result.exit_code == 2, result.output
    assert "frobnicate: UNKNOWN" in result.output
    assert "unknown parameter names" in result.output and "8.frobnicate" in result.output
    # a facility teaches the table the name
    env = {"CRYOLIVE_MESSAGING__PARAMETER_MAP": json.dumps({"frobnicate": "ctf.box_px"})}
    result = show(str(broken), "--strict", *params, env=env)
    assert result.exit_code == 0, result.output
    assert "frobnicate -> ctf.box_px" in result.output


# -- at run time --------------------------------------------------------------------------------


class MovieJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    movie_path: str
    pixel_size_a: float
    project_dir: str
    motion: MotionParameters


class Done(BaseModel):
    movie_path: str
    patches: list[int]


def _recipe(queue: str, extra: dict[str, object] | None = None) -> dict[str, object]:
    parameters = {"movie": "{movie}", "pixel_size": "{pixel_size}", "gain_ref": "{gain_ref}",
                  "patch_sizes": {"x": 3, "y": 2}, "threads": 4, **(extra or {})}  # fmt: skip
    return {
        "1": {
            "service": "MotionCorr",
            "queue": f"{queue}.mc",
            "parameters": parameters,
            "output": 2,
        },
        "2": {"service": "CTFFind", "queue": f"{queue}.ctf"},
        "start": [[1, []]],
    }


def test_a_cryolive_service_takes_a_zocalo_step_in_diamonds_names(transport: Transport) -> None:
    got: list[MovieJob] = []
    lock = threading.Lock()

    def handle(message: MovieJob, context: Context) -> Done:
        with lock:
            got.append(message)
        patches = [message.motion.patches_x, message.motion.patches_y]
        return Done(movie_path=message.movie_path, patches=patches)

    recipe = recipe_from_zocalo(_recipe("zp"), name="zp")
    service = Service("mc", MovieJob, handle)
    wrapped = ZocaloTransport(
        transport, known={"mc"}, table={"MotionCorr": "mc"}, models={"mc": MovieJob}
    )
    values = {"movie": "/raw/a.tiff", "pixel_size": 0.83, "gain_ref": "/raw/gain.mrc"}
    with running(Worker(wrapped, service, queues=["zp.mc"])):
        # project_dir, which Diamond's step lacks, comes from the environment
        start_zocalo(transport, recipe, values, environment={"project_dir": "/p"})
        (onward,) = take(transport, "zp.ctf")
    (message,) = got
    assert message.movie_path == "/raw/a.tiff" and message.pixel_size_a == 0.83
    assert message.project_dir == "/p"
    assert message.motion.gain_path == "/raw/gain.mrc"
    assert (message.motion.patches_x, message.motion.patches_y) == (3, 2)
    assert message.motion.bfactor_a2 == MotionParameters().bfactor_a2  # cryolive's default
    sent = parse_zocalo(onward.body)
    assert sent.payload == {"movie_path": "/raw/a.tiff", "patches": [3, 2]}
    assert sent.recipe["1"]["parameters"]["movie"] == "/raw/a.tiff"  # Diamond's names go on


def test_an_unknown_parameter_name_dead_letters_the_step_naming_it(transport: Transport) -> None:
    recipe = recipe_from_zocalo(_recipe("zu", {"frobnicate": 1}), name="zu")
    service = Service("mc", MovieJob, lambda m, c: None)
    wrapped = ZocaloTransport(
        transport, known={"mc"}, table={"MotionCorr": "mc"}, models={"mc": MovieJob}
    )
    values = {"movie": "/raw/a.tiff", "pixel_size": 0.83, "gain_ref": "/raw/gain.mrc"}
    with running(Worker(wrapped, service, queues=["zu.mc"])):
        start_zocalo(transport, recipe, values, environment={"project_dir": "/p"})
        wait_for(lambda: len(list_dead(transport, "zu.mc")) == 1)
    (dead,) = transport.dead_letters("zu.mc")
    assert "frobnicate" in dead.reason
    assert json.loads(dead.body)["recipe"]["1"]["parameters"]["frobnicate"] == 1
