"""Run parameters (cryolive.params): one typed object per run, its defaults in one place, typos
refused with the name that was meant, recorded rows read back exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from cryolive.errors import BadInputError
from cryolive.params import (
    FLAT,
    RUN_KEYS,
    RunParameters,
    build_parameters,
    check_overrides,
    encode_overrides,
    from_stored,
)

SRC = Path(__file__).parents[1] / "src" / "cryolive"


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ({"cs_mmm": 2.0}, "cs_mmm: not a run parameter (did you mean 'cs_mm'?)"),
        ({"ctf": {"amplitude_contrats": 0.1}}, "ctf.amplitude_contrats"),
        ({"ctff.cs_mm": 2.0}, "ctff.cs_mm: not a run parameter"),
        ({"class2d_clases": 20}, "did you mean 'class2d_classes'?"),
    ],
)
def test_an_unknown_name_is_refused_with_the_name_meant(source: dict[str, Any], said: str) -> None:
    with pytest.raises(BadInputError) as caught:
        build_parameters(request=source)
    assert said in str(caught.value) and str(caught.value).startswith("request: ")


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ({"ctf_min_resolution_a": 4.0}, "must be larger than max_resolution_a"),  # 4 Å < 5 Å
        ({"ctf_min_defocus_a": 60_000.0}, "min_defocus_a must not exceed max_defocus_a"),
        ({"patches_x": 0}, "request: patches_x (motion.patches_x): Input should be greater"),
        ({"particle_diameter_min_a": 200.0}, "diameter_min_a must not exceed diameter_max_a"),
        ({"particle_diameter_max_a": -1.0}, "particle_diameter_max_a (picking.diameter_max_a)"),
        ({"box_px": 255}, "box_px must be even"),
        ({"amplitude_contrast": 1.0}, "ctf.amplitude_contrast"),
        ({"picker": "cryolo"}, "picking.picker"),
        ({"class2d_classes": "many"}, "class2d_classes (class2d.classes)"),
    ],
)
def test_values_out_of_bounds_or_contradicting_are_refused(
    source: dict[str, Any], said: str
) -> None:
    with pytest.raises(BadInputError, match=re.escape(said)):
        build_parameters(request=source)


def test_the_request_beats_the_collection_which_beats_the_recipe() -> None:
    run = build_parameters(
        recipe={"cs_mm": 0.01, "patches_x": 7, "pixel_size_a": 9.0},
        collection={"pixel_size_a": 1.06, "patches_x": 6, "gain_path": None},
        request={"motion": {"patches_x": 3}, "gain_reference": "/visit/raw/gain.mrc"},
    )
    assert run.ctf.cs_mm == 0.01  # the recipe's, over the default
    assert run.acquisition.pixel_size_a == 1.06  # the data collection's, over the recipe's
    assert run.motion.patches_x == 3  # the request's, over both
    assert run.motion.gain_path == "/visit/raw/gain.mrc"  # a None below is "not given"
    assert run.motion.patches_y == RunParameters().motion.patches_y


def test_a_partial_request_over_a_run_keeps_the_rest_of_that_run() -> None:
    base = build_parameters(request={"particle_diameter_max_a": 300.0, "class2d_classes": 12})
    run = build_parameters(base=base, request={"particle_diameter_min_a": 200.0})
    assert (run.picking.diameter_min_a, run.picking.diameter_max_a) == (200.0, 300.0)
    assert run.class2d.classes == 12


def _unusual() -> RunParameters:
    return build_parameters(
        collection={
            "pixel_size_a": 0.1 + 0.2,  # a float whose repr is long: stored exactly
            "dose_per_frame_e_per_a2": 1 / 3,
            "total_dose_e_per_a2": 40.0,
            "voltage_kv": 200.0,
            "eer_grouping": 16,
            "gain_path": "/dls/m02/data/2026/bi1-1/raw/gain ä.mrc",
        },
        request={
            "ctf": {"cs_mm": 0.01, "fit_phase_shift": True, "box_px": 256},
            "picker": "topaz",
            "box_px": 128,
            "class2d_growth": 2.25,
        },
    )


def test_stored_rows_rebuild_the_run_exactly() -> None:
    run = _unusual()
    rows = run.stored()
    assert from_stored(rows) == run
    assert from_stored(rows).stored() == rows
    # every field is recorded, defaults included, so a later change of a default leaves
    # recorded runs as they ran
    assert rows["ctf_min_resolution_a"] == "30.0" and rows["class2d_batch_size"] == "50000"
    assert json.loads(rows["gain_path"]) == "/dls/m02/data/2026/bi1-1/raw/gain ä.mrc"


def test_rows_recorded_before_still_load() -> None:
    rows = {  # an older run: fewer rows, the web form's names, plain text, run keys
        "pixel_size_a": "1.06",
        "gain_reference": "/visit/raw/gain.mrc",
        "box_size_px": "256",
        "number_of_classes": "20",
        "class2d_min_particles": "300",
        "requested_by": "alice",
        "raw_dir": "/visit/raw",
    }
    run = from_stored(rows)
    assert run.acquisition.pixel_size_a == 1.06
    assert run.motion.gain_path == "/visit/raw/gain.mrc"
    assert (run.extract.box_px, run.class2d.classes, run.class2d.min_particles) == (256, 20, 300)
    assert run.ctf == RunParameters().ctf
    assert "requested_by" in RUN_KEYS and "gain_reference" not in run.stored()


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ({"patches_x": '"five"'}, "patches_x (motion.patches_x)"),
        ({"pach_size": "5"}, "pach_size: not a run parameter"),
        ({"ctf_max_resolution_a": "40"}, "must be larger than max_resolution_a"),
    ],
)
def test_a_corrupt_stored_row_is_bad_input(rows: dict[str, str], said: str) -> None:
    with pytest.raises(BadInputError) as caught:
        from_stored(rows)
    assert str(caught.value).startswith("stored parameters: ") and said in str(caught.value)


def test_overrides_are_checked_alone_and_written_under_one_name() -> None:
    # a smaller diameter alone is fine: the run it repeats may have a larger maximum
    assert check_overrides({"particle_diameter_min_a": "200"}) == {"particle_diameter_min_a": 200}
    assert encode_overrides({"gain_reference": "/g.mrc", "number_of_classes": 20}) == {
        "gain_path": '"/g.mrc"',
        "class2d_classes": "20",
    }
    said = "patches_y (motion.patches_y): Input should be greater"
    with pytest.raises(BadInputError, match=re.escape(said)):
        check_overrides({"patches_y": 0})
    with pytest.raises(BadInputError, match="did you mean 'pick_threshold'"):
        check_overrides({"pick_treshold": 4})


def test_every_field_has_a_flat_name_and_every_optional_field_defaults_to_none() -> None:
    # one ProcessingJobParameter row per field; a missing row means the default, which for a
    # field that may be None must be None, or a None would not be rebuilt
    targets = set(FLAT.values())
    for section, field in RunParameters.model_fields.items():
        model = field.annotation
        assert model is not None
        for name, info in model.model_fields.items():  # type: ignore[union-attr]
            assert (section, name) in targets, f"{section}.{name} has no flat name"
            if not info.is_required() and type(None) in getattr(info.annotation, "__args__", ()):
                assert info.default is None, f"{section}.{name}"


def test_run_parameters_are_frozen_and_refuse_unknown_fields() -> None:
    run = RunParameters()
    with pytest.raises(ValueError, match="frozen"):
        run.ctf.cs_mm = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="Extra inputs"):
        RunParameters.model_validate({"ctf": {"cs": 2.0}})


# Code at or above cryolive.params' layer (messaging, db, services, web, cli, export …) takes
# its defaults from cryolive.params; the layers below it (engines, io with its writers, the
# adapters, the simulator) cannot import it and keep their own as library API.
_BELOW = ("engines", "io", "adapters", "simulate")
_DEFAULTS = {
    "Cs 2.7 mm": re.compile(r"(?<![\d.])2\.7(?![\d])"),
    "amplitude contrast 0.07": re.compile(r"(?<![\d.])0\.07(?![\d])"),
    "CTF search 50000 Å": re.compile(r"(?<![\d.])50_?000(?:\.0)?(?![\d])"),
    "class2d batch 50_000": re.compile(r"(?<![\d.])50_000(?![\d])"),
}


@pytest.mark.parametrize("what", sorted(_DEFAULTS))
def test_a_default_is_written_once(what: str) -> None:
    pattern = _DEFAULTS[what]
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] in _BELOW:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert found and all(f.startswith("params.py:") for f in found), found
    assert not list(SRC.rglob("services/__init__.py")) or "DEFAULT_PARAMETERS" not in (
        SRC / "services" / "__init__.py"
    ).read_text(encoding="utf-8")


def test_the_3d_engines_are_chosen_by_flat_names() -> None:
    from cryolive.params import build_parameters

    run = build_parameters(
        recipe={"class3d_engine": "relion", "refine3d_engine": "relion"},
        request={"refine3d_max_iterations": 4},
    )
    assert (run.class3d.engine, run.refine3d.engine, run.refine3d.max_iterations) == (
        "relion",
        "relion",
        4,
    )
    assert run.flat()["refine3d_engine"] == "relion"
    with pytest.raises(BadInputError, match="class3d_engine"):
        build_parameters(recipe={"class3d_engine": "cryoSPARC"})
