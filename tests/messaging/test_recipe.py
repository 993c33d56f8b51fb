import json
from importlib import resources
from pathlib import Path

import pytest

from cryolive.messaging import (
    Envelope,
    MalformedMessage,
    Recipe,
    RecipeError,
    load_recipe,
    validate_recipe,
    work_key,
)
from cryolive.messaging.dispatch import envelope_for
from cryolive.messaging.recipe import fill, recipe_from_zocalo
from cryolive.messaging.registry import default_registry
from cryolive.pipeline.runtime import recipe_path
from cryolive.services import pipeline_registry

RECIPES = sorted((Path(__file__).parents[2] / "src" / "cryolive" / "recipes").glob("*.json"))


def _steps(**outputs: list[str]) -> dict[str, dict[str, object]]:
    return {
        sid: {
            "service": "echo",
            "queue": f"q{sid}",
            "parameters": {"text": "{text}"},
            "outputs": {"default": targets},
        }
        for sid, targets in outputs.items()
    }


def test_there_are_recipes() -> None:
    assert RECIPES, "src/cryolive/recipes/ holds at least one recipe"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_in_recipes_folder_is_valid(path: Path) -> None:
    """Every step's service exists and its parameters fit the service's message model."""
    recipe = load_recipe(path, registry=pipeline_registry("sqlite://"))
    assert recipe.start


def test_zocalo_format_is_read_with_list_and_named_outputs() -> None:
    data = {
        "1": {"service": "echo", "queue": "a", "parameters": {"text": "{x}"}, "output": 2},
        "2": {
            "service": "echo",
            "queue": "b",
            "parameters": {"text": "t"},
            "output": {"good": [3], "bad": 3},
        },
        "3": {"service": "echo", "queue": "c", "parameters": {"text": "t", "hops": 4}},
        "start": [[1, []]],
    }
    recipe = recipe_from_zocalo(data, name="z")
    assert recipe.start == ["1"]
    assert recipe.steps["1"].outputs == {"default": ["2"]}
    assert recipe.steps["2"].outputs == {"good": ["3"], "bad": ["3"]}
    validate_recipe(recipe, default_registry())


def test_zocalo_file_loads_by_content(tmp_path: Path) -> None:
    path = tmp_path / "zoc.json"
    path.write_text(
        json.dumps(
            {
                "1": {"service": "echo", "queue": "a", "parameters": {"text": "x"}},
                "start": [[1, []]],
            }
        )
    )
    assert load_recipe(path).name == "zoc"


def test_cycles_are_rejected_but_self_loops_allowed() -> None:
    with pytest.raises(ValueError, match=r"cycle 1 -> 2 -> 1"):
        Recipe(name="c", start=["1"], steps=_steps(**{"1": ["2"], "2": ["1"]}))
    Recipe(name="s", start=["1"], steps=_steps(**{"1": ["1", "2"], "2": []}))


def test_undefined_steps_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"start: step '9'"):
        Recipe(name="c", start=["9"], steps=_steps(**{"1": []}))
    with pytest.raises(ValueError, match=r"steps.1.outputs.default: step '7'"):
        Recipe(name="c", start=["1"], steps=_steps(**{"1": ["7"]}))


def test_parameters_are_checked_against_the_service_model() -> None:
    steps = {
        "1": {"service": "echo", "queue": "a", "parameters": {"text": "t", "colour": "red"}},
        "2": {"service": "echo", "queue": "b", "parameters": {"hops": 1}},
        "3": {"service": "echo", "queue": "c", "parameters": {"text": "t", "hops": "many"}},
        "4": {"service": "nope", "queue": "d"},
        "5": {"service": "echo", "queue": "e", "parameters": {"text": "t", "hops": "{n}"}},
    }
    recipe = Recipe(name="r", start=["1"], steps=steps)
    with pytest.raises(RecipeError) as err:
        validate_recipe(recipe, default_registry())
    message = str(err.value)
    assert "steps.1.parameters.colour: not a field" in message
    assert "steps.2.parameters.text: required" in message
    assert "steps.3.parameters.hops:" in message
    assert "steps.4.service: unknown service 'nope'" in message
    assert "steps.5" not in message  # a placeholder is checked when the step runs


def test_broken_recipe_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="cannot read"):
        load_recipe(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RecipeError, match="not JSON"):
        load_recipe(tmp_path / "bad.json")
    (tmp_path / "shape.json").write_text('{"name": "x", "steps": {}, "start": []}')
    with pytest.raises(RecipeError, match="not a valid recipe"):
        load_recipe(tmp_path / "shape.json")
    with pytest.raises(RecipeError, match="start"):
        recipe_from_zocalo({"1": {}}, name="z")


def test_fill_keeps_types_and_formats_text() -> None:
    values = {"movie": "/v/m1.tiff", "n": 3, "shift": [1.5, -2.0]}
    template = {"a": "{n}", "b": "{movie}.mrc", "c": ["{shift}"], "d": 7}
    assert fill(template, values) == {"a": 3, "b": "/v/m1.tiff.mrc", "c": [[1.5, -2.0]], "d": 7}
    with pytest.raises(KeyError):
        fill("{missing}", values)


def test_work_key_is_deterministic_and_follows_the_inputs() -> None:
    a = work_key("r", "1", "motioncorr", {"movie": "m1", "bin": 1})
    assert a == work_key("r", "1", "motioncorr", {"bin": 1, "movie": "m1"})
    assert a != work_key("r", "1", "motioncorr", {"movie": "m2", "bin": 1})
    assert a != work_key("r", "1", "motioncorr", {"movie": "m1", "bin": 2})
    assert a.startswith("motioncorr:")


def test_envelope_round_trip_and_malformed_bodies() -> None:
    recipe = load_recipe(RECIPES[0])
    env = envelope_for(recipe, recipe.start[0], {"text": "hi"})
    assert Envelope.from_bytes(env.to_bytes()) == env
    assert env.key == envelope_for(recipe, recipe.start[0], {"text": "hi"}).key
    for body in (b"", b"{}", b"\xff\xfe", b'{"step": 1}'):
        with pytest.raises(MalformedMessage, match="body"):
            Envelope.from_bytes(body)
    with pytest.raises(ValueError, match="step_id"):
        envelope_for(recipe, "nope", {})


def test_shipped_recipes_are_package_data_found_by_name() -> None:
    """The recipes travel inside the package (an installed cryolive finds them, not only a
    checkout), and every one is found by its name."""
    package = Path(str(resources.files("cryolive")))
    for path in RECIPES:
        found = recipe_path(path.stem)
        assert found.is_relative_to(package) and found.read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="no recipe"):
        recipe_path("no-such-recipe")


def _spa() -> dict[str, object]:
    return json.loads(recipe_path("spa-preprocess").read_text())


def test_a_typo_in_a_recipes_run_parameters_is_refused_at_load(tmp_path: Path) -> None:
    data = _spa() | {"parameters": {"ctf_min_resolutoin_a": 20.0}}
    (tmp_path / "typo.json").write_text(json.dumps(data))
    with pytest.raises(RecipeError) as caught:
        load_recipe(tmp_path / "typo.json")
    assert "ctf_min_resolutoin_a: not a run parameter" in str(caught.value)
    assert "did you mean 'ctf_min_resolution_a'?" in str(caught.value)
    (tmp_path / "fine.json").write_text(json.dumps(data | {"parameters": {"cs_mm": 0.01}}))
    recipe = load_recipe(tmp_path / "fine.json", registry=pipeline_registry("sqlite://"))
    assert recipe.parameters == {"cs_mm": 0.01}


def test_a_typo_inside_a_steps_run_section_is_refused_with_its_path() -> None:
    data = _spa()
    steps = data["steps"]
    assert isinstance(steps, dict)
    steps["ctf"]["parameters"]["ctf"] = {"cs_mmm": 2.0}
    steps["pick"]["parameters"]["picking"] = {"diameter_min_a": -3.0}
    recipe = Recipe.model_validate(data)
    with pytest.raises(RecipeError) as caught:
        validate_recipe(recipe, pipeline_registry("sqlite://"))
    assert "steps.ctf.parameters.ctf.cs_mmm: Extra inputs are not permitted" in str(caught.value)
    assert "steps.pick.parameters.picking.diameter_min_a: Input should be greater" in str(
        caught.value
    )


def test_fill_reads_one_field_of_a_run_section() -> None:
    values = {"acquisition": {"voltage_kv": 200.0}, "ctf": {"cs_mm": 2.0}}
    assert fill("{acquisition.voltage_kv}", values) == 200.0
    assert fill("{ctf}", values) == {"cs_mm": 2.0}
    with pytest.raises(KeyError):
        fill("{acquisition.pixel_size_a}", values)
