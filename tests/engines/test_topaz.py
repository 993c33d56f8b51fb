"""Topaz's pretrained picker against the simulator's truth, through the engine, the pick
service and ``cryolive pick --picker topaz`` (issue 7). Topaz is an optional extra: these
tests need it (skipped locally without it, failing in CI)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import mrcfile
import numpy as np
import pytest
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.engines.picking import pick_topaz, score_picks, topaz_available
from cryolive.io.particle_files import read_coordinates
from cryolive.messaging.service import Context
from cryolive.params import RunParameters
from cryolive.records import FailureRecord, ParticlePickerRecord
from cryolive.services.messages import PickMessage, WriteResults
from cryolive.services.pick import pick

MATCH_PX = 45.0  # half the particle's largest diameter (90 Å), at 1 Å/px


@pytest.fixture(scope="module")
def topaz(need_service: Callable[[str, str], None]) -> Iterator[None]:
    """Topaz installed; PyTorch on one thread (two threads on two shared cores run the network
    and Topaz's normalisation several times slower)."""
    if not topaz_available():
        need_service("Topaz", "not importable: pip install -e '.[dev,topaz]'")
    torch = importlib.import_module("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


_MISSED_ON_REALISTIC = pytest.mark.xfail(
    strict=True,
    reason="issue 23, goal missed: on the simulator's realistic default Topaz's pretrained "
    "resnet16 finds 12 of 60 (P 0.80, R 0.20); see BENCHMARKS.md. Remove when it passes.",
)


@pytest.mark.parametrize(
    ("seed", "defocus_a", "ice_a", "density", "least_f1", "preset"),
    [
        (22, 25000.0, 450.0, 0.40, 0.95, "easy"),  # measured P 1.000, R 1.000, F1 1.000
        (24, 12000.0, 700.0, 0.35, 0.85, "easy"),  # measured P 0.826, R 1.000, F1 0.905
        pytest.param(22, 25000.0, 450.0, 0.40, 0.90, "realistic", marks=_MISSED_ON_REALISTIC),
    ],
)
def test_topaz_recovers_planted_particles(
    topaz: None,
    picking_truth: ModuleType,
    seed: int,
    defocus_a: float,
    ice_a: float,
    density: float,
    least_f1: float,
    preset: str,
) -> None:
    planted = picking_truth.planted_micrograph(
        np.random.default_rng(seed), defocus_a=defocus_a, ice_a=ice_a, density=density,
        preset=preset,
    )  # 1024² at 1 Å/px, 40 e/Å²  # fmt: skip
    picks = pick_topaz(planted.micrograph, pixel_size_a=1.0, diameter_a=80.0)
    truth = planted.positions_px[:, ::-1]
    score = score_picks(np.stack([picks.x_px, picks.y_px], 1), truth, max_distance_px=MATCH_PX)
    assert score.recall >= 0.95
    assert score.f1 >= least_f1
    assert picks.method == "topaz" and picks.x_px.dtype == np.float32
    assert np.all(np.diff(picks.scores) <= 0) and np.all(picks.scores > 0)
    assert 7.5 <= picks.working_pixel_size_a <= 8.5


def test_pick_service_and_cli_run_topaz(
    topaz: None, picking_truth: ModuleType, tmp_path: Path
) -> None:
    small = picking_truth.planted_micrograph(np.random.default_rng(5), density=0.25, preset="easy")
    path = tmp_path / "mic.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(small.micrograph)
        mrc.voxel_size = 1.0
    truth = small.positions_px[:, ::-1]
    result = CliRunner().invoke(
        build_app(),
        ["pick", str(path), "--out", str(tmp_path / "out"), "--picker", "topaz",
         "--diameter-min", "60", "--diameter-max", "100"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(topaz," in result.output
    x, y = read_coordinates(tmp_path / "out" / "mic_autopick.star")
    assert score_picks(np.stack([x, y], 1), truth, max_distance_px=MATCH_PX).f1 >= 0.9
    emits = pick(_message(path, tmp_path, picker="topaz"), _CONTEXT)
    record = _only_record(emits)
    assert isinstance(record, ParticlePickerRecord)
    assert record.picking_template == "Topaz resnet16"
    assert record.number_of_particles is not None and record.number_of_particles >= 0.8 * len(truth)


def test_without_topaz_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, picking_truth: ModuleType, tmp_path: Path
) -> None:
    # a None entry in sys.modules makes its import fail, as if Topaz were not installed
    for name in [m for m in sys.modules if m == "topaz" or m.startswith("topaz.")] + ["topaz"]:
        monkeypatch.setitem(sys.modules, name, None)
    image = np.random.default_rng(0).poisson(40.0, (512, 512)).astype(np.float32)
    with pytest.raises(ImportError, match=r"cryolive\[topaz\]"):
        pick_topaz(image, pixel_size_a=1.0, diameter_a=80.0)
    assert not topaz_available()
    path = tmp_path / "mic.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(image)
        mrc.voxel_size = 1.0
    record = _only_record(pick(_message(path, tmp_path, picker="topaz"), _CONTEXT))
    assert isinstance(record, FailureRecord) and record.reason == "picker-missing"
    assert "topaz" in record.message


def test_topaz_rejects_bad_input() -> None:
    image = np.random.default_rng(0).poisson(40.0, (512, 512)).astype(np.float32)
    with pytest.raises(ValueError, match="model"):
        pick_topaz(image, pixel_size_a=1.0, diameter_a=80.0, model="resnet99")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="diameter_a"):
        pick_topaz(image, pixel_size_a=1.0, diameter_a=20.0)  # under 4 working pixels of 8 Å
    with pytest.raises(ValueError, match="device"):
        pick_topaz(image, pixel_size_a=1.0, diameter_a=80.0, device="tpu")
    with pytest.raises(ValueError, match="picker"):
        _message(Path("m.mrc"), Path("p"), picker="crYOLO")
    result = CliRunner().invoke(
        build_app(),
        ["pick", "m.mrc", "--out", "o", "--picker", "crYOLO",
         "--diameter-min", "60", "--diameter-max", "100"],
    )  # fmt: skip
    assert result.exit_code != 0 and "--picker" in result.output


_CONTEXT = Context(key="k", recipe="spa-preprocess", step="pick", attempt=0, delivery_count=0)


def _fields(path: Path, project: Path) -> dict[str, object]:
    return {
        "movie_path": str(path), "data_collection_id": 1, "program_id": 1,
        "project_dir": str(project), "movie_stem": "mic", "micrograph_path": str(path),
        "micrograph_pixel_size_a": 1.0, "defocus_u_a": 15000.0, "defocus_v_a": 15000.0,
        "astigmatism_angle_deg": 0.0,
    }  # fmt: skip


def _message(path: Path, project: Path, *, picker: str) -> PickMessage:
    """A pick message as a run sends it: the run's typed sections (cryolive.params)."""
    sections = RunParameters().values()
    picking = {**sections["picking"], "diameter_min_a": 60.0, "diameter_max_a": 100.0}
    return PickMessage.model_validate(
        {
            **_fields(path, project),
            "voltage_kv": 300.0,
            "picking": {**picking, "picker": picker},
            "extract": sections["extract"],
            "ctf": sections["ctf"],
        }
    )


def _only_record(emits: list) -> object:  # type: ignore[type-arg]
    results = [e for e in emits if e.output == "results"]  # particles also go on to class2d
    assert len(results) == 1
    payload = results[0].result
    assert isinstance(payload, WriteResults) and len(payload.records) == 1
    return payload.records[0]
