"""Live 3D: a 3D run at the first selected-particle count and again each time it doubles,
particles gathered into one windowed, downscaled stack, the best class refined and
postprocessed when good enough, redelivery changing nothing; the pure rules (box, angular
efficiency, which class) against planted answers. The 3D commands are stand-ins that write
their file contracts (tests/fake3d.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from cryolive.engines.class2d import fourier_crop
from cryolive.errors import BadInputError
from cryolive.io.layout import job_dir
from cryolive.io.outputs.recon3d import box_for_3d
from cryolive.io.particle_files import read_particles_3d
from cryolive.messaging.service import Context
from cryolive.params import Class3DParameters, Refine3DParameters
from cryolive.records import Class3DRecord, Class3DValues, RefinementRecord
from cryolive.services import class3d as class3d_module
from cryolive.services import refine3d as refine3d_module
from cryolive.services._jobs import run_step
from cryolive.services._rules3d import angular_efficiency, class_to_refine, run_due
from cryolive.services.messages import Class3DMessage, Refine3DMessage, WriteResults
from cryolive.simulate import procedural_specimen, simulate_particles, write_simulated_particles

CONTEXT = Context(key="k", recipe="spa-preprocess", step="class3d", attempt=0, delivery_count=0)
PER_BATCH = 80


def _load_fake3d() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "fake3d.py"
    spec = importlib.util.spec_from_file_location("cryolive_tests_fake3d", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fake3d = _load_fake3d()


@pytest.fixture(scope="module")
def selections(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The selected particles of five 2D batches: 80 simulated particles each (box 32, 3 Å)."""
    root = tmp_path_factory.mktemp("selected")
    stars = []
    for i in range(5):
        sim = simulate_particles(
            procedural_specimen(seed=1),
            n_particles=PER_BATCH,
            n_views=3,
            box_px=32,
            pixel_size_a=3.0,
            junk_fraction={},
            seed=i,
        )
        stars.append(write_simulated_particles(sim, root / f"batch{i + 1}"))
    return stars


def _message(project: Path, star: Path, batch: int, **refine: object) -> Class3DMessage:
    return Class3DMessage.model_validate(
        {
            "data_collection_id": 1,
            "program_id": 7,
            "project_dir": str(project),
            "movie_path": f"/visit/raw/mic{batch}.tiff",
            "batch_number": batch,
            "particles_in_batch": 100,
            "selected_star": str(star),
            "selected_particles": PER_BATCH,
            "particle_diameter_a": 60.0,
            "class3d": {"first_particles": 150, "growth": 2.0, "classes": 3},
            "refine3d": {"min_class_particles": 20, "min_angular_efficiency": 0.0, **refine},
        }
    )


def _split(emits: list[Any]) -> tuple[list[Class3DRecord], list[Refine3DMessage]]:
    records, refine = [], []
    for emit in emits:
        if emit.output == "refine3d":
            refine.append(emit.result)
        else:
            assert emit.output == "results" and isinstance(emit.result, WriteResults)
            records += [r for r in emit.result.records if isinstance(r, Class3DRecord)]
    return records, refine


def test_3d_runs_at_the_first_count_and_each_doubling_and_refines_the_best_class(
    selections: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(class3d_module, "run_step", fake3d.run_step)
    runs: list[tuple[int, int]] = []
    refine: list[Refine3DMessage] = []
    for batch, star in enumerate(selections[:4], start=1):
        records, follow = _split(class3d_module.class3d(_message(tmp_path, star, batch), CONTEXT))
        runs += [(r.run_number, r.particles) for r in records]
        refine += follow
    # 80: nothing; 160 >= 150: run 1; 240 < 2 x 160; 320: run 2. Each record is sent twice
    # (when made, and with the next message), which the writer's upserts absorb.
    assert runs == [(1, 160), (1, 160), (2, 320)]
    assert [(m.run_number, m.class_number) for m in refine] == [(1, 1), (2, 1)]
    job = job_dir(tmp_path, "Class3D", 7)
    state = json.loads((job / "state.json").read_text())
    assert [(r["number"], r["done"]) for r in state["runs"]] == [(1, True), (2, True)]
    # the particles of run 1: both batches, windowed to 1.2 x 60 Å = 24 px, downscaled to
    # 20 px (3.6 Å <= 3.75 Å)
    stack, tables = read_particles_3d(job / "run_001" / "particles.star")
    assert stack.images.shape == (160, 20, 20)
    assert stack.pixel_size_a == pytest.approx(3.6)
    first, _ = read_particles_3d(selections[0])
    expected = fourier_crop(np.asarray(first.images)[:, 4:28, 4:28], 20)
    np.testing.assert_allclose(stack.images[:PER_BATCH], expected, atol=1e-4)
    np.testing.assert_array_equal(stack.defocus[:PER_BATCH], first.defocus)
    assert "rlnAnglePsi" not in tables.particles  # 2D poses are not 3D priors
    # the classes as recorded: class 1 (8 Å, views spread) selected for refinement
    record = Class3DRecord.model_validate(state["emitted"][-1]) if state["emitted"] else None
    assert record is not None and record.run_number == 2
    assert [(c.class_number, c.resolution_a, c.selected) for c in record.classes] == [
        (1, 8.0, True),
        (2, 25.0, False),
        (3, 25.0, False),
    ]
    assert record.classes[0].particles == 160 and record.binned_pixel_size_a == pytest.approx(3.6)
    # the initial model's own estimate, from its run_model.star, for the CryoemInitialModel row
    assert record.initial_model.resolution_a == fake3d.INITIAL_MODEL_RESOLUTION_A
    assert all(Path(c.map_full_path).is_file() for c in record.classes)

    # refinement and postprocess of each run's best class: B-factor points accumulate
    monkeypatch.setattr(refine3d_module, "run_step", fake3d.run_step)
    refined = []
    for message in refine:
        (emit,) = refine3d_module.refine3d(message, CONTEXT)
        (r,) = emit.result.records
        assert isinstance(r, RefinementRecord)
        refined.append(r)
    assert [(r.particles, len(r.bfactor_points)) for r in refined] == [(80, 1), (160, 2)]
    last = refined[-1]
    assert last.resolution_a == pytest.approx(fake3d.planted_resolution_a(160), rel=1e-3)
    assert Path(last.map_full_path).name == "postprocess.mrc" and Path(last.map_full_path).is_file()
    assert last.pixel_size_a == pytest.approx(3.6)
    # a redelivered refinement is not run again
    (again,) = refine3d_module.refine3d(refine[-1], CONTEXT)
    assert again.result.records == [last]


def test_a_smaller_older_selection_of_a_batch_does_not_replace_a_newer_one(
    selections: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(class3d_module, "run_step", fake3d.run_step)
    newer = _message(tmp_path, selections[0], 1)
    older = newer.model_copy(update={"particles_in_batch": 50, "selected_particles": 200})
    class3d_module.class3d(newer, CONTEXT)
    records, _ = _split(class3d_module.class3d(older, CONTEXT))
    assert records == []  # 80 selected, not 200: no run
    state = json.loads((job_dir(tmp_path, "Class3D", 7) / "state.json").read_text())
    assert state["batches"]["1"]["selected"] == PER_BATCH


def test_the_refinement_runs_in_the_classification_s_point_group(
    selections: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: dict[str, list[str]] = {}

    def recorded(step: str, arguments: list[str], **kwargs: Any) -> None:
        steps[step] = list(arguments)
        fake3d.run_step(step, arguments, **kwargs)

    monkeypatch.setattr(class3d_module, "run_step", recorded)
    refine: list[Refine3DMessage] = []
    for batch, star in enumerate(selections[:2], start=1):
        message = _message(tmp_path, star, batch)
        d2 = message.class3d.model_copy(update={"symmetry": "D2"})
        refine += _split(
            class3d_module.class3d(message.model_copy(update={"class3d": d2}), CONTEXT)
        )[1]
    assert [m.symmetry for m in refine] == ["D2"]
    for step in ("initial-model", "class3d"):  # the maps refine3d starts from share the axes
        args = steps[step]
        assert args[args.index("--symmetry") + 1] == "D2", step
    monkeypatch.setattr(refine3d_module, "run_step", recorded)
    (emit,) = refine3d_module.refine3d(refine[0], CONTEXT)
    args = steps["refine3d"]
    assert args[args.index("--symmetry") + 1] == "D2"  # `cryolive refine3d` is told the group
    assert emit.result.records[0].symmetry == "D2"


def test_a_poor_best_class_is_not_refined(
    selections: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(class3d_module, "run_step", fake3d.run_step)
    refine: list[Refine3DMessage] = []
    for batch, star in enumerate(selections[:2], start=1):
        message = _message(tmp_path, star, batch, max_class_resolution_a=6.0)  # class 1: 8 Å
        refine += _split(class3d_module.class3d(message, CONTEXT))[1]
    assert refine == []


def test_a_step_runs_the_cryolive_command_and_a_missing_one_is_named(tmp_path: Path) -> None:
    # the command really runs (its log says what it refused); not retried: it cannot appear
    with pytest.raises(BadInputError, match="cryolive no-such-step: not a command"):
        run_step("no-such-step", [], out_dir=tmp_path, timeout_s=120)
    assert "No such command" in (tmp_path / "no-such-step.log").read_text()


def test_run_due_first_at_the_count_then_at_each_doubling() -> None:
    settings = Class3DParameters(first_particles=1000, growth=2.0)
    assert not run_due(999, [], settings)
    assert run_due(1000, [], settings)
    assert not run_due(1999, [1000], settings)
    assert run_due(2000, [1000], settings)
    assert not run_due(3000, [1000, 2000], settings) and run_due(4000, [1000, 2000], settings)


def test_box_is_1_2_diameters_and_the_pixel_at_most_3_75_a() -> None:
    # 150 Å at 1 Å/px, extracted at 256 px: window 180 px, downscaled to 48 px (3.75 Å)
    box = box_for_3d(
        diameter_a=150, pixel_size_a=1.0, extracted_box_px=256, box_factor=1.2, max_pixel_a=3.75
    )
    assert (box.window_px, box.box_px, box.pixel_size_a) == (180, 48, pytest.approx(3.75))
    # 200 Å at 1.06 Å/px: window 228 px, to 66 px (3.66 Å, the smallest even box under 3.75 Å)
    box = box_for_3d(
        diameter_a=200, pixel_size_a=1.06, extracted_box_px=400, box_factor=1.2, max_pixel_a=3.75
    )
    assert box.window_px == 228 and box.box_px == 66 and box.pixel_size_a <= 3.75
    # already coarse: never upscaled; never more than was extracted
    box = box_for_3d(
        diameter_a=100, pixel_size_a=4.0, extracted_box_px=24, box_factor=1.2, max_pixel_a=3.75
    )
    assert (box.window_px, box.box_px, box.pixel_size_a) == (24, 24, 4.0)
    with pytest.raises(ValueError, match="diameter_a"):
        box_for_3d(
            diameter_a=0, pixel_size_a=1.0, extracted_box_px=64, box_factor=1.2, max_pixel_a=3.75
        )


def test_angular_efficiency_of_a_symmetric_refinement_counts_every_equivalent_view() -> None:
    # even views written in C4's asymmetric unit (rot in ±45°) cover a quarter of the sectors
    rng = np.random.default_rng(4)
    n = 5000
    folded = np.column_stack(
        [
            rng.uniform(-45, 45, n),
            np.degrees(np.arccos(rng.uniform(-1, 1, n))),
            rng.uniform(-180, 180, n),
        ]
    )
    alone = angular_efficiency(folded)
    expanded = refine3d_module.symmetry_expanded(folded, "C4")
    assert expanded.shape == (4 * n, 3)
    assert alone is not None and alone < 0.2
    whole = angular_efficiency(expanded)
    assert whole is not None and whole > 0.9
    np.testing.assert_array_equal(refine3d_module.symmetry_expanded(folded, "C1"), folded)


def test_angular_efficiency_of_even_and_preferred_views() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    even = np.column_stack(
        [
            rng.uniform(-180, 180, n),
            np.degrees(np.arccos(rng.uniform(-1, 1, n))),
            rng.uniform(-180, 180, n),
        ]
    )
    one_view = even.copy()
    one_view[:, :2] = (10.0, 90.0)
    half = np.concatenate([even[: n // 2], one_view[: n // 2]])
    e_even, e_one, e_half = (angular_efficiency(a) for a in (even, one_view, half))
    assert e_even is not None and e_even > 0.9
    assert e_one == 0.0
    assert e_half is not None and 0.0 <= e_half < 0.5
    assert angular_efficiency(even[:50]) is None  # under one particle per direction bin


def test_the_best_class_is_refined_only_when_good_enough() -> None:
    def cls(
        k: int, resolution: float | None, particles: int, efficiency: float | None
    ) -> Class3DValues:
        return Class3DValues(
            class_number=k,
            map_full_path=f"/c{k}.mrc",
            particles=particles,
            distribution=0.3,
            resolution_a=resolution,
            angular_efficiency=efficiency,
        )

    rules = Refine3DParameters(
        max_class_resolution_a=20, min_angular_efficiency=0.3, min_class_particles=100
    )
    classes = [cls(1, 12.0, 500, 0.7), cls(2, 9.0, 50, 0.9), cls(3, 15.0, 800, 0.6)]
    assert class_to_refine(classes, rules) == 1  # class 2 is better but has too few particles
    assert class_to_refine([cls(1, 12.0, 500, 0.1)], rules) is None  # one view
    assert class_to_refine([cls(1, 25.0, 500, 0.9)], rules) is None  # too coarse
    assert class_to_refine([cls(1, 12.0, 500, None)], rules) == 1  # efficiency unknown
    assert class_to_refine(classes, rules.model_copy(update={"enabled": False})) is None


def test_a_step_that_refuses_its_input_is_a_recorded_failure_not_a_retry(tmp_path: Path) -> None:
    from cryolive.errors import BadInputError
    from cryolive.jobs import LocalRunner
    from cryolive.services._jobs import run_step

    with pytest.raises(BadInputError, match="refused its input"):
        run_step(
            "postprocess",
            [str(tmp_path / "missing1.mrc"), str(tmp_path / "missing2.mrc")],
            out_dir=tmp_path / "out",
            timeout_s=120,
            runner=LocalRunner(),
        )
    assert (tmp_path / "out" / "postprocess.log").is_file()


def test_the_engine_parameters_choose_the_engine_of_each_3d_step(
    selections: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``class3d.engine`` goes to initial-model and class3d, ``refine3d.engine`` and
    ``refine3d.max_iterations`` with the best class to refine3d and postprocess."""
    steps: list[tuple[str, list[str]]] = []

    def recording(step: str, arguments: list[str], **kwargs: Any) -> None:
        steps.append((step, list(arguments)))
        fake3d.run_step(step, arguments, **kwargs)

    monkeypatch.setattr(class3d_module, "run_step", recording)
    monkeypatch.setattr(refine3d_module, "run_step", recording)
    follow: list[Refine3DMessage] = []
    for batch, star in enumerate(selections[:2], start=1):
        message = _message(tmp_path, star, batch, engine="relion", max_iterations=3)
        message = message.model_copy(
            update={"class3d": message.class3d.model_copy(update={"engine": "relion"})}
        )
        follow += _split(class3d_module.class3d(message, CONTEXT))[1]
    assert [s for s, _ in steps] == ["initial-model", "class3d"]
    assert all(a[a.index("--engine") + 1] == "relion" for _, a in steps)
    (refine,) = follow
    assert (refine.refine3d.engine, refine.refine3d.max_iterations) == ("relion", 3)
    refine3d_module.refine3d(refine, CONTEXT)
    assert [s for s, _ in steps[2:]] == ["refine3d", "postprocess"]
    assert all(a[a.index("--engine") + 1] == "relion" for _, a in steps[2:])
    assert steps[2][1][steps[2][1].index("--iterations") + 1] == "3"
    # the defaults: cryolive's engines
    assert Class3DParameters().engine == Refine3DParameters().engine == "cryolive"
    with pytest.raises(ValueError, match="relion"):
        Refine3DParameters.model_validate({"engine": "relion3"})
