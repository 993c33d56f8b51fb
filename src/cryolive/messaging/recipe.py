"""Recipes: the JSON graph of steps a unit of work travels through.

Native format::

    {"name": "echo-3step", "start": ["1"], "parameters": {},
     "steps": {"1": {"service": "echo", "queue": "echo", "parameters": {"text": "{text}"},
                     "outputs": {"default": ["2"]}}, ...}}

The Zocalo format (numbered steps with ``service``, ``queue``, ``parameters``, ``output`` and a
``start`` list of ``[step, payload]`` pairs) is read by :func:`recipe_from_zocalo`.

A recipe's ``parameters`` are its run parameters (flat names such as ``"cs_mm"`` or sections
such as ``{"ctf": {"cs_mm": 0.01}}``, :mod:`cryolive.params`): over the defaults, under the data
collection's and the user's values. A step takes a run section whole (``"ctf": "{ctf}"``) or
one value of it (``"voltage_kv": "{acquisition.voltage_kv}"``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from cryolive.errors import BadInputError
from cryolive.params import build_parameters

if TYPE_CHECKING:
    from cryolive.messaging.service import Registry

# Validation context flag: the recipe arrives inside a message (see Envelope.from_bytes).
WIRE = "cryolive_wire"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")
# A Zocalo environment reference: a whole value ``$ispyb_movie_id``, filled when the step runs
# from what an earlier step stored (or from the start parameters, when given there).
_REFERENCE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class RecipeError(ValueError):
    """A recipe that cannot run: bad graph, unknown service or parameters that do not fit."""


class MissingParameters(RecipeError, BadInputError):
    """Placeholders of a recipe that the start parameters do not fill."""

    def __init__(self, recipe: str, names: list[str]) -> None:
        self.names = names
        super().__init__(
            f"{recipe}: missing start parameters {', '.join(names)} "
            f"(give them as --param NAME=VALUE)"
        )


# Fields the Zocalo format brought are left out of a dump while unset (exclude_if): a cryolive
# recipe travels as before, and workers of the previous release still read it.
def _unset(value: Any) -> bool:
    return not value


def _native(value: Any) -> bool:
    return bool(value == "cryolive")


class Step(BaseModel):
    """One step: which service handles it, on which queue (or topic), with which parameters.

    A queue may be a ``{placeholder}`` (Zocalo's ``{feedback_queue}``), filled when the recipe
    starts. ``job_parameters`` (Zocalo's cluster wrappers) and ``error`` targets are kept as
    they are: cryolive does not act on them, the services that read them do.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(min_length=1)
    queue: str = Field(default="", pattern=r"^([A-Za-z0-9_.\-]|\{[A-Za-z_][A-Za-z0-9_.]*\})*$")
    topic: str | None = Field(
        default=None, exclude_if=_unset, description="Zocalo: broadcast here, not to a queue"
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    job_parameters: dict[str, Any] = Field(default_factory=dict, exclude_if=_unset)
    outputs: dict[str, list[str]] = Field(default_factory=dict)
    error: list[str] = Field(
        default_factory=list, exclude_if=_unset, description="Steps a failure is sent to"
    )

    @model_validator(mode="after")
    def _has_destination(self) -> Step:
        if not self.queue and not self.topic:
            raise ValueError(f"step of service {self.service!r}: needs a queue or a topic")
        return self


class Recipe(BaseModel):
    """A graph of steps. Structure is checked on construction (see :func:`validate_recipe`
    for the check against a service registry)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    start: list[str] = Field(min_length=1)
    steps: dict[str, Step] = Field(min_length=1)
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Run parameters of this recipe (cryolive.params)"
    )
    start_payloads: dict[str, Any] = Field(
        default_factory=dict,
        exclude_if=_unset,
        description="Zocalo: the payload each start step is sent",
    )
    error: list[str] = Field(
        default_factory=list, exclude_if=_unset, description="Zocalo: recipe-wide error steps"
    )
    origin: Literal["cryolive", "zocalo"] = Field(
        default="cryolive",
        exclude_if=_native,
        description="The format it was written in (and is sent on in)",
    )

    @model_validator(mode="after")
    def _graph_is_sound(self, info: ValidationInfo) -> Recipe:
        if info.context and info.context.get(WIRE):
            return self  # checked when the recipe was started; the worker guards routing
        if self.parameters:
            try:
                build_parameters(recipe=self.parameters)
            except BadInputError as exc:
                raise ValueError(f"parameters: {exc}") from None
        shape = tuple(
            (
                sid,
                tuple((name, tuple(targets)) for name, targets in step.outputs.items())
                + ((("error", tuple(step.error)),) if step.error else ()),
            )
            for sid, step in self.steps.items()
        )
        problem = _graph_problem(tuple(self.start), shape)
        for target in self.error:
            if target not in self.steps:
                problem = problem or f"error: step {target!r} is not defined"
        if problem:
            raise ValueError(problem)
        return self


Shape = tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]


@functools.lru_cache(maxsize=256)
def _graph_problem(start: tuple[str, ...], shape: Shape) -> str:
    """What is wrong with a recipe graph, or "" (cached: every message carries its recipe)."""
    steps = dict(shape)
    for step_id in start:
        if step_id not in steps:
            return f"start: step {step_id!r} is not defined"
    for step_id, outputs in shape:
        for output, targets in outputs:
            for target in targets:
                if target not in steps:
                    return f"steps.{step_id}.outputs.{output}: step {target!r} is not defined"
    cycle = _find_cycle({sid: [t for _, ts in outs for t in ts] for sid, outs in shape})
    if cycle:
        return f"steps: cycle {' -> '.join(cycle)} (only self-loops are allowed)"
    return ""


def _find_cycle(targets: dict[str, list[str]]) -> list[str]:
    """A cycle through two or more steps, as a list of step ids, or [] if there is none."""
    edges = {sid: sorted({t for t in ts if t != sid}) for sid, ts in targets.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for sid in targets:
        if sid not in state and (found := visit(sid)):
            return found
    return []


def fill(template: Any, values: Mapping[str, Any]) -> Any:
    """Fill ``{name}`` placeholders in a parameter value from ``values``.

    A string that is exactly one placeholder takes the value itself (keeping its type); a
    placeholder inside longer text is formatted in. Dicts and lists are filled recursively.

    Raises
    ------
    KeyError
        When a placeholder names a value that is not in ``values``.
    """
    if isinstance(template, str):
        if "{" not in template:
            return template
        whole = _PLACEHOLDER.fullmatch(template)
        if whole:
            return _lookup(values, whole.group(1))
        return _PLACEHOLDER.sub(lambda m: str(_lookup(values, m.group(1))), template)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    """``values[name]``, or for a dotted name the field of a section (``ctf.cs_mm``)."""
    if name in values or "." not in name:
        return values[name]
    value: Any = values
    for part in name.split("."):
        if not isinstance(value, Mapping):
            raise KeyError(name)
        value = value[part]
    return value


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_PLACEHOLDER.search(value))
    if isinstance(value, dict):
        return any(_has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False


def validate_recipe(recipe: Recipe, registry: Registry) -> None:
    """Check that every step's service exists and its parameters fit the service's model.

    Values holding a ``{placeholder}`` are checked when the step runs; every other value is
    validated against its field's type now. Unknown and missing required fields are errors.

    Raises
    ------
    RecipeError
        Listing every problem found, each prefixed with ``steps.<id>``.
    """
    problems: list[str] = []
    for step_id, step in recipe.steps.items():
        where = f"{recipe.name}: steps.{step_id}"
        if step.service not in registry:
            problems.append(f"{where}.service: unknown service {step.service!r}")
            continue
        fields = registry[step.service].message.model_fields
        for name in step.parameters.keys() - fields.keys():
            problems.append(f"{where}.parameters.{name}: not a field of {step.service!r}")
        for name, field in fields.items():
            if name not in step.parameters:
                if field.is_required():
                    problems.append(f"{where}.parameters.{name}: required by {step.service!r}")
                continue
            value = step.parameters[name]
            if _has_placeholder(value):
                continue
            form: Any = (  # the type with its bounds
                Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
            )
            try:
                TypeAdapter(form).validate_python(value)
            except ValidationError as exc:
                error = exc.errors()[0]
                inner = "".join(f".{p}" for p in error["loc"])
                problems.append(f"{where}.parameters.{name}{inner}: {error['msg']}")
    if problems:
        raise RecipeError("\n".join(problems))


def recipe_from_zocalo(data: dict[str, Any], *, name: str) -> Recipe:
    """Read a recipe in the Zocalo format (python-workflows' recipe).

    Parameters
    ----------
    data
        ``{"1": {"service": ..., "queue": ... | "topic": ..., "parameters": {...},
        "job_parameters": {...}, "output": 2 | [2, 3] | {"name": 2 | [...]}, "error": 3},
        ..., "start": [[1, payload], ...], "error": 4}``.
    name
        Name the recipe gets (Zocalo recipes are named by their file).
    """
    if not isinstance(data, dict) or "start" not in data:
        raise RecipeError("data: a Zocalo recipe needs a 'start' list")
    steps: dict[str, Any] = {}
    for step_id, raw in data.items():
        if step_id in ("start", "error"):
            continue
        if not str(step_id).isdigit():
            raise RecipeError(f"data.{step_id}: Zocalo step ids are numbers")
        if not isinstance(raw, dict):
            raise RecipeError(f"data.{step_id}: a step must be an object")
        unknown = raw.keys() - _ZOCALO_STEP_KEYS
        if unknown:
            raise RecipeError(f"data.{step_id}: unknown keys {sorted(unknown)}")
        output = raw.get("output", {})
        if isinstance(output, dict):
            outputs = {str(k): _targets(v) for k, v in output.items()}
        else:
            outputs = {"default": _targets(output)}
        step: dict[str, Any] = {
            "service": raw.get("service", ""),
            "queue": raw.get("queue", ""),
            "topic": raw.get("topic"),
            "parameters": raw.get("parameters", {}),
            "job_parameters": raw.get("job_parameters", {}),
            "outputs": outputs,
            "error": _targets(raw["error"]) if "error" in raw else [],
        }
        steps[str(step_id)] = step
    try:
        start: list[str] = []
        payloads: dict[str, Any] = {}
        for entry in data["start"]:
            step_id = str(entry[0] if isinstance(entry, list | tuple) else entry)
            start.append(step_id)
            if isinstance(entry, list | tuple) and len(entry) > 1 and entry[1] not in ([], {}):
                payloads[step_id] = entry[1]
        return Recipe.model_validate(
            {
                "name": name,
                "start": start,
                "steps": steps,
                "start_payloads": payloads,
                "error": _targets(data["error"]) if "error" in data else [],
                "origin": "zocalo",
            }
        )
    except (ValidationError, TypeError, IndexError) as exc:
        raise RecipeError(f"data: not a valid Zocalo recipe: {exc}") from exc


_ZOCALO_STEP_KEYS = {"service", "queue", "topic", "parameters", "job_parameters", "output", "error"}


def placeholders(recipe: Recipe) -> tuple[set[str], set[str]]:
    """The ``{placeholder}`` names and the ``$reference`` names a recipe's steps use (in
    queues, parameters and job parameters)."""
    names: set[str] = set()
    references: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            names.update(m.group(1) for m in _PLACEHOLDER.finditer(value))
            whole = _REFERENCE.fullmatch(value)
            if whole:
                references.add(whole.group(1))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for step in recipe.steps.values():
        walk([step.queue, step.topic or "", step.parameters, step.job_parameters])
    return names, references


def missing_placeholders(recipe: Recipe, values: Mapping[str, Any]) -> list[str]:
    """The ``{placeholder}`` names of ``recipe`` that ``values`` does not fill, sorted."""
    missing = []
    for name in placeholders(recipe)[0]:
        try:
            _lookup(values, name)
        except KeyError:
            missing.append(name)
    return sorted(missing)


def fill_recipe(recipe: Recipe, values: Mapping[str, Any], *, strict: bool = True) -> Recipe:
    """The recipe with its steps' placeholders filled from the start ``values``.

    ``{name}`` placeholders (also in queues and job parameters) and ``$name`` references whose
    value is given are filled; a ``$name`` reference without a value stays for the step that
    runs it (Zocalo fills those from the message's environment).

    Raises
    ------
    MissingParameters
        With ``strict``, naming every ``{placeholder}`` that ``values`` lacks (without it those
        stay as they are).
    """
    missing = missing_placeholders(recipe, values)
    if strict and missing:
        raise MissingParameters(recipe.name, missing)

    def filled(value: Any) -> Any:
        if isinstance(value, str):
            whole = _REFERENCE.fullmatch(value)
            if whole:
                return values.get(whole.group(1), value)
            if "{" not in value:
                return value
            if _PLACEHOLDER.fullmatch(value):
                try:
                    return fill(value, values)
                except KeyError:
                    return value
            return _PLACEHOLDER.sub(lambda m: _text_or_keep(values, m), value)
        if isinstance(value, dict):
            return {k: filled(v) for k, v in value.items()}
        if isinstance(value, list):
            return [filled(v) for v in value]
        return value

    steps = {}
    for step_id, step in recipe.steps.items():
        queue = filled(step.queue)
        steps[step_id] = step.model_copy(
            update={
                "queue": queue if isinstance(queue, str) else str(queue),
                "parameters": filled(step.parameters),
                "job_parameters": filled(step.job_parameters),
            }
        )
    return recipe.model_copy(update={"steps": steps})


def _text_or_keep(values: Mapping[str, Any], match: re.Match[str]) -> str:
    try:
        return str(_lookup(values, match.group(1)))
    except KeyError:
        return match.group(0)


def _targets(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


RECIPES = Path(str(resources.files("cryolive") / "recipes"))  # package data: found when installed


def recipe_path(name: str) -> Path:
    """A recipe shipped with cryolive (``cryolive/recipes/<name>.json``, package data), or a
    path to one."""
    candidate = Path(name)
    if candidate.suffix == ".json" and candidate.is_file():
        return candidate
    shipped = RECIPES / f"{name}.json"
    if not shipped.is_file():
        raise ValueError(f"recipe: no recipe {name!r} (looked for {shipped})")
    return shipped


def load_recipe(path: Path, *, registry: Registry | None = None) -> Recipe:
    """Load a recipe file (native or Zocalo format) and, given a registry, validate it.

    Raises
    ------
    RecipeError
        When the file is missing, not JSON, or not a valid recipe.
    """
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise RecipeError(f"path: cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise RecipeError(f"path: {path} is not JSON: {exc}") from exc
    if isinstance(data, dict) and "steps" in data:
        try:
            recipe = Recipe.model_validate(data)
        except ValidationError as exc:
            raise RecipeError(f"path: {path} is not a valid recipe: {exc}") from exc
    else:
        recipe = recipe_from_zocalo(data, name=Path(path).stem)
    if registry is not None:
        validate_recipe(recipe, registry)
    return recipe
