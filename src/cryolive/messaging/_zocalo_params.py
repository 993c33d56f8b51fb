"""Diamond's step parameter names -> cryolive's message fields.

A Zocalo recipe's step speaks the parameter names of Diamond's services (``movie``,
``pixel_size``, ``dose_per_frame``, ``gain_ref``); a cryolive service's message has its own
fields (``movie_path``, ``pixel_size_a``, ``dose_per_frame_e_per_a2``, ``motion.gain_path``).
:data:`PARAMETER_MAP` is the table between them; a facility extends or overrides it with the
``messaging.parameter_map`` setting.

A table entry maps a name to

- a field of the service's message (``"pixel_size_a"``), or a field of one of its run sections
  (``"motion.gain_path"``);
- a pattern with ``{key}`` for a value that is an object, each key filling it:
  ``"patch_sizes": "motion.patches_{key}"`` takes ``{"x": 5, "y": 4}`` to ``motion.patches_x``
  and ``motion.patches_y``;
- ``""``: known, and not used by cryolive (cluster settings, Diamond's own ids, RELION options).

An entry keyed ``"Service.name"`` (``"CTFFind.pixel_size"``) applies to that service only and
wins over the plain ``"name"``. A name the table does not know and that is not a field of the
service is *unknown*: :func:`translate` reports it, and it is passed on under its own name, so
that the service's message model refuses it with its name (never silently dropped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from cryolive.params import RunParameters

IGNORED = ""

PARAMETER_MAP: dict[str, str] = {
    # the movie and its data collection
    "movie": "movie_path",
    "movie_path": "movie_path",
    "dcid": "data_collection_id",
    "app_id": "program_id",
    "program_id": "program_id",
    # optics and dose
    "pixel_size": "pixel_size_a",
    "dose_per_frame": "dose_per_frame_e_per_a2",
    "voltage": "voltage_kv",
    "kv": "voltage_kv",
    # motion correction
    "gain_ref": "motion.gain_path",
    "patch_sizes": "motion.patches_{key}",
    "eer_grouping": "motion.eer_grouping",
    "bfactor": "motion.bfactor_a2",
    # CTF
    "input_image": "micrograph_path",
    "cs": "ctf.cs_mm",
    "amplitude_contrast": "ctf.amplitude_contrast",
    "ctf_box_size": "ctf.box_px",
    "min_res": "ctf.min_resolution_a",
    "max_res": "ctf.max_resolution_a",
    "min_defocus": "ctf.min_defocus_a",
    "max_defocus": "ctf.max_defocus_a",
    # picking, extraction, 2D classification
    "particle_diameter": "picking.diameter_max_a",
    "boxsize": "extract.box_px",
    "nr_classes": "class2d.classes",
    "batch_size": "class2d.batch_size",
    "nr_iter": "class2d.iterations",
    # Diamond's own: where its programs write, how its cluster runs them, its ids
    "mrc_out": IGNORED,  # cryolive writes under its own project layout (project_dir)
    "experiment_type": IGNORED,
    "eer_sampling": IGNORED,
    "fm_int_file": IGNORED,
    "motion_corr_binning": IGNORED,
    "use_motioncor2": IGNORED,
    "do_icebreaker_jobs": IGNORED,
    "mc_uuid": IGNORED,
    "picker_uuid": IGNORED,
    "relion_options": IGNORED,
    "submit_to_slurm": IGNORED,
    "threads": IGNORED,
    "cryolo_model_weights": IGNORED,
    "retained_fraction": IGNORED,
    "ispyb_command": IGNORED,
    "store_result": IGNORED,
    "foil_hole_id": IGNORED,
    "movie_number": IGNORED,
    "image_number": IGNORED,
    "movie_id": IGNORED,
    "session_id": IGNORED,
    "cluster": IGNORED,
    "workingdir": IGNORED,
    "wrapper": IGNORED,
    "standard_output": IGNORED,
    "standard_error": IGNORED,
}

_SECTIONS = set(RunParameters.model_fields)


def parameter_map(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The built-in table with a facility's ``overrides`` over it."""
    return {**PARAMETER_MAP, **(overrides or {})}


@dataclass(frozen=True)
class Translation:
    """A step's parameters in cryolive's names.

    Attributes
    ----------
    fields
        cryolive field -> value; run sections nested (``{"motion": {"gain_path": ...}}``).
    renamed
        Diamond's name -> the cryolive field(s) it went to (comma-separated for a pattern).
    ignored
        Names the table knows and cryolive does not use, or that go to a field the service's
        message lacks (``name -> why``).
    unknown
        Names neither the table nor the service's message knows (passed on as they are).
    needed
        Fields the service's message requires that the step does not give: filled, when the
        step runs, from the message's environment and the previous step's payload.
    """

    fields: dict[str, Any]
    renamed: dict[str, str] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    needed: list[str] = field(default_factory=list)


def _entry(table: Mapping[str, str], service: str, name: str) -> str | None:
    qualified = f"{service}.{name}"
    if qualified in table:
        return table[qualified]
    return table.get(name)


def translate(
    service: str,
    parameters: Mapping[str, Any],
    *,
    table: Mapping[str, str],
    model: type[BaseModel] | None = None,
) -> Translation:
    """Diamond's parameters of a step of ``service`` (its Zocalo class name) in cryolive's names.

    Parameters
    ----------
    service
        The step's service as the recipe names it (``MotionCorr``), for ``"Service.name"``
        entries.
    parameters
        The step's parameters (placeholders filled or not: values are moved, not read).
    table
        :func:`parameter_map`.
    model
        The cryolive service's message model, when known: a name that is one of its fields
        passes as it is, a target it lacks is ignored (and said so), and the fields it
        requires that the step lacks are listed in ``needed``.
    """
    own = set(model.model_fields) if model is not None else set()
    fields: dict[str, Any] = {}
    renamed: dict[str, str] = {}
    ignored: dict[str, str] = {}
    unknown: list[str] = []
    for name, value in parameters.items():
        target = _entry(table, service, name)
        if target is None:
            if name not in own:
                unknown.append(name)
            fields[name] = value
            continue
        if target == IGNORED:
            ignored[name] = "not used by cryolive"
            continue
        if "{key}" in target and isinstance(value, Mapping):
            pairs = [(target.replace("{key}", str(k)), v) for k, v in value.items()]
        else:
            pairs = [(target, value)]
        placed = []
        for path, item in pairs:
            head = path.split(".", 1)[0]
            if model is not None and head not in own:
                ignored[name] = f"{path}: not a field of this service's message"
                continue
            _place(fields, path, item)
            placed.append(path)
        if placed:
            renamed[name] = ", ".join(placed)
    needed: list[str] = []
    if model is not None:
        needed = [
            f
            for f, info in model.model_fields.items()
            if info.is_required() and f not in fields and f not in _SECTIONS
        ]
    return Translation(fields, renamed, ignored, unknown, needed)


def _place(fields: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        fields[head] = value
        return
    section = fields.setdefault(head, {})
    if not isinstance(section, dict):  # a whole section given, then one field of it
        section = fields[head] = dict(section) if isinstance(section, Mapping) else {}
    _place(section, rest, value)


def step_parameters(
    translation: Translation, model: type[BaseModel], values: Mapping[str, Any]
) -> dict[str, Any]:
    """The parameters a cryolive service's step runs with: the translated fields, each run
    section the model takes completed from cryolive's defaults (under a section the
    ``values`` carry), and a ``{field}`` placeholder for every field still needed (filled
    from the environment and the previous step's payload when the step runs)."""
    out = dict(translation.fields)
    defaults = RunParameters()
    for name in model.model_fields:
        if name not in _SECTIONS:
            continue
        base = getattr(defaults, name).model_dump(mode="json")
        given = values.get(name)
        if isinstance(given, Mapping):
            base.update(given)
        mapped = out.get(name)
        if isinstance(mapped, Mapping):
            base.update(mapped)
        out[name] = base
    for name in translation.needed:
        out[name] = "{" + name + "}"
    return out
