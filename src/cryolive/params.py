"""Run parameters: one typed, validated object per processing run, its defaults here only.

A run's :class:`RunParameters` is built once, by :func:`build_parameters`, from (lowest to
highest precedence):

1. the defaults written in the sections below;
2. the recipe's own ``parameters`` (a facility's choices for every run of that recipe);
3. the data collection: what the watcher reads from the movies' metadata (pixel size, voltage,
   dose, frames, the gain reference it found, the EER grouping it chose);
4. the user's request: a reprocessing request (web form, ``cryolive reprocess``) or the
   operator's ``start_pipeline(parameters=...)``.

A value of ``None`` in a source means "not given there": the level below it stands.

The run is recorded in ISPyB as one ProcessingJobParameter row per flat name (:data:`FLAT`,
the one table from the flat names that databases, recipes and the web's reprocess form use to
the ``section.field`` they fill), the value JSON-encoded; every field is recorded, defaults
included, so :func:`from_stored` rebuilds the run exactly even after a default changes here.
Runs recorded before (fewer rows, older names such as ``gain_reference``) still load.

Messages carry the run's sections (``{"ctf": {...}}``); each service's message model has the
sections it needs as typed fields (``CtfMessage.ctf: CtfParameters``).
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from cryolive.errors import BadInputError

__all__ = [
    "FLAT",
    "RUN_KEYS",
    "Acquisition",
    "Class2DParameters",
    "Class3DParameters",
    "CtfParameters",
    "ExtractParameters",
    "MotionParameters",
    "PickingParameters",
    "Refine3DParameters",
    "RunParameters",
    "build_parameters",
    "check_overrides",
    "encode_overrides",
    "from_stored",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Acquisition(_Section):
    """What the microscope did; from the data collection (``None``: not known yet)."""

    pixel_size_a: float | None = Field(default=None, gt=0, description="Movie pixel size, Å")
    voltage_kv: float = Field(default=300.0, gt=0)
    dose_per_frame_e_per_a2: float | None = Field(default=None, gt=0)
    total_dose_e_per_a2: float | None = Field(default=None, gt=0)


class MotionParameters(_Section):
    frames: int | None = Field(default=None, ge=1, description="Frames the metadata promises")
    gain_path: str | None = Field(default=None, min_length=1)
    eer_grouping: int | None = Field(default=None, ge=1, description="EER frames per fraction")
    patches_x: int = Field(default=5, ge=1)
    patches_y: int = Field(default=5, ge=1)
    bfactor_a2: float = Field(
        default=500.0, ge=0, description="Whole-frame alignment B-factor, Å² (docs/motioncorr.md)"
    )


class CtfParameters(_Section):
    """The CTF search; resolutions in Å, so the lowest resolution is the larger number."""

    cs_mm: float = Field(default=2.7, ge=0)
    amplitude_contrast: float = Field(default=0.07, ge=0, lt=1)
    box_px: int = Field(default=512, ge=64, description="Tile size of the fitted spectrum")
    min_resolution_a: float = Field(default=30.0, gt=0)
    max_resolution_a: float = Field(default=5.0, gt=0)
    min_defocus_a: float = Field(default=3000.0, gt=0)
    max_defocus_a: float = Field(default=50000.0, gt=0)
    defocus_step_a: float = Field(default=100.0, gt=0, description="Step of the defocus search")
    fit_phase_shift: bool = False
    min_phase_shift_deg: float = Field(default=0.0, description="Phase-shift search from, degrees")
    max_phase_shift_deg: float = Field(default=180.0, description="... to, degrees")
    phase_shift_step_deg: float = Field(default=10.0, gt=0, description="... in steps, degrees")
    known_astigmatism_a: float | None = Field(
        default=None,
        ge=0,
        description="A known astigmatism (U - V, Å) held fixed; None: fitted (CTFFIND's option)",
    )
    known_astigmatism_angle_deg: float = Field(
        default=0.0, description="Its U axis, degrees from +x towards +y"
    )

    @model_validator(mode="after")
    def _ordered(self) -> CtfParameters:
        if self.min_resolution_a <= self.max_resolution_a:
            raise ValueError(
                f"min_resolution_a ({self.min_resolution_a} Å) must be larger than "
                f"max_resolution_a ({self.max_resolution_a} Å): resolutions are in Å"
            )
        if self.min_defocus_a > self.max_defocus_a:
            raise ValueError("min_defocus_a must not exceed max_defocus_a")
        if self.min_phase_shift_deg > self.max_phase_shift_deg:
            raise ValueError("min_phase_shift_deg must not exceed max_phase_shift_deg")
        return self


class PickingParameters(_Section):
    diameter_min_a: float = Field(default=70.0, gt=0)
    diameter_max_a: float = Field(default=130.0, gt=0)
    threshold: float | None = Field(
        default=None,
        gt=0,
        description="Background sd (LoG); None: set from each micrograph's own score distribution",
    )
    picker: Literal["log", "topaz"] = Field(
        default="log", description="LoG, or Topaz's pretrained resnet16 (optional extra)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> PickingParameters:
        if self.diameter_min_a > self.diameter_max_a:
            raise ValueError("diameter_min_a must not exceed diameter_max_a")
        return self


class ExtractParameters(_Section):
    box_px: int | None = Field(default=None, ge=16, description="None: 1.5 x largest diameter")

    @model_validator(mode="after")
    def _even(self) -> ExtractParameters:
        if self.box_px is not None and self.box_px % 2:
            raise ValueError("box_px must be even")
        return self


class Class2DParameters(_Section):
    """Streaming 2D classification (its mask: the largest particle diameter + 10%)."""

    classes: int = Field(default=50, ge=1, description="Classes of a full batch")
    batch_size: int = Field(default=50_000, ge=10, description="Particles per batch")
    min_particles: int = Field(default=1_000, ge=2, description="Before the first classification")
    particles_per_class: int = Field(
        default=100, ge=2, description="Fewer particles than this per class use fewer classes"
    )
    growth: float = Field(
        default=1.5, gt=1.0, description="A batch is classified again when it grows by this factor"
    )
    iterations: int = Field(default=20, ge=2)


class Class3DParameters(_Section):
    """Live 3D: an initial model and a 3D classification of the particles of the selected 2D
    classes, first at ``first_particles`` and again each time their count grows by ``growth``.

    Particles are windowed to ``box_factor`` times the particle diameter and downscaled so
    that the pixel is at most ``max_pixel_a`` (docs/pipeline.md, "3D").
    """

    first_particles: int = Field(
        default=50_000, ge=10, description="Selected 2D particles before the first 3D run"
    )
    growth: float = Field(
        default=2.0, gt=1.0, description="3D runs again each time the selected count grows so"
    )
    classes: int = Field(default=4, ge=1, le=50, description="3D classes")
    symmetry: str = Field(default="C1", pattern=r"^(C[1-9][0-9]?|D[2-9][0-9]?|T|O|I[1-4]?)$")
    box_factor: float = Field(default=1.2, ge=1.0, le=3.0, description="Box / particle diameter")
    max_pixel_a: float = Field(default=3.75, gt=0, description="Largest pixel for 3D, Å")
    engine: Literal["cryolive", "relion"] = Field(
        default="cryolive",
        description="Initial model and 3D classes by cryolive, or by RELION 3.1 (relion_refine)",
    )


class Refine3DParameters(_Section):
    """Refinement of the best 3D class (then its postprocessing) when it is good enough."""

    enabled: bool = True
    max_class_resolution_a: float = Field(
        default=20.0, gt=0, description="The best 3D class must reach this resolution, Å"
    )
    min_angular_efficiency: float = Field(
        default=0.3, ge=0, le=1, description="... and views this evenly spread (0-1)"
    )
    min_class_particles: int = Field(default=100, ge=10, description="... with this many particles")
    engine: Literal["cryolive", "relion"] = Field(
        default="cryolive",
        description="Refinement and postprocess by cryolive, or by RELION 3.1 (auto-refine, "
        "relion_mask_create, relion_postprocess)",
    )
    max_iterations: int = Field(
        default=15, ge=1, le=999, description="Most refinement iterations (RELION: --auto_iter_max)"
    )


class RunParameters(_Section):
    """Every parameter of one processing run, in typed sections."""

    acquisition: Acquisition = Field(default_factory=Acquisition)
    motion: MotionParameters = Field(default_factory=MotionParameters)
    ctf: CtfParameters = Field(default_factory=CtfParameters)
    picking: PickingParameters = Field(default_factory=PickingParameters)
    extract: ExtractParameters = Field(default_factory=ExtractParameters)
    class2d: Class2DParameters = Field(default_factory=Class2DParameters)
    class3d: Class3DParameters = Field(default_factory=Class3DParameters)
    refine3d: Refine3DParameters = Field(default_factory=Refine3DParameters)

    def values(self) -> dict[str, Any]:
        """The sections as JSON values, as messages carry them (``{"ctf": {...}, ...}``)."""
        return self.model_dump(mode="json")

    def flat(self) -> dict[str, Any]:
        """Every field under its flat name (the first name :data:`FLAT` gives it)."""
        dumped = self.values()
        return {name: dumped[s][f] for name, (s, f) in _CANONICAL.items()}

    def stored(self) -> dict[str, str]:
        """The ProcessingJobParameter rows of the run: flat name -> JSON value (None omitted:
        every field that may be None has None as its default)."""
        return {name: json.dumps(v) for name, v in self.flat().items() if v is not None}


# The one table: flat name -> (section, field). The first name of a field is the one written;
# the others are read (the web's reprocess form says gain_reference, box_size_px,
# number_of_classes).
FLAT: dict[str, tuple[str, str]] = {
    "pixel_size_a": ("acquisition", "pixel_size_a"),
    "voltage_kv": ("acquisition", "voltage_kv"),
    "dose_per_frame_e_per_a2": ("acquisition", "dose_per_frame_e_per_a2"),
    "total_dose_e_per_a2": ("acquisition", "total_dose_e_per_a2"),
    "frames": ("motion", "frames"),
    "gain_path": ("motion", "gain_path"),
    "gain_reference": ("motion", "gain_path"),
    "eer_grouping": ("motion", "eer_grouping"),
    "patches_x": ("motion", "patches_x"),
    "patches_y": ("motion", "patches_y"),
    "bfactor_a2": ("motion", "bfactor_a2"),
    "cs_mm": ("ctf", "cs_mm"),
    "amplitude_contrast": ("ctf", "amplitude_contrast"),
    "ctf_box_px": ("ctf", "box_px"),
    "ctf_min_resolution_a": ("ctf", "min_resolution_a"),
    "ctf_max_resolution_a": ("ctf", "max_resolution_a"),
    "ctf_min_defocus_a": ("ctf", "min_defocus_a"),
    "ctf_max_defocus_a": ("ctf", "max_defocus_a"),
    "ctf_defocus_step_a": ("ctf", "defocus_step_a"),
    "fit_phase_shift": ("ctf", "fit_phase_shift"),
    "ctf_min_phase_shift_deg": ("ctf", "min_phase_shift_deg"),
    "ctf_max_phase_shift_deg": ("ctf", "max_phase_shift_deg"),
    "ctf_phase_shift_step_deg": ("ctf", "phase_shift_step_deg"),
    "ctf_known_astigmatism_a": ("ctf", "known_astigmatism_a"),
    "ctf_known_astigmatism_angle_deg": ("ctf", "known_astigmatism_angle_deg"),
    "particle_diameter_min_a": ("picking", "diameter_min_a"),
    "particle_diameter_max_a": ("picking", "diameter_max_a"),
    "pick_threshold": ("picking", "threshold"),
    "picker": ("picking", "picker"),
    "box_px": ("extract", "box_px"),
    "box_size_px": ("extract", "box_px"),
    "class2d_classes": ("class2d", "classes"),
    "number_of_classes": ("class2d", "classes"),
    "class2d_batch_size": ("class2d", "batch_size"),
    "class2d_min_particles": ("class2d", "min_particles"),
    "class2d_particles_per_class": ("class2d", "particles_per_class"),
    "class2d_growth": ("class2d", "growth"),
    "class2d_iterations": ("class2d", "iterations"),
    "class3d_first_particles": ("class3d", "first_particles"),
    "class3d_growth": ("class3d", "growth"),
    "class3d_classes": ("class3d", "classes"),
    "symmetry": ("class3d", "symmetry"),
    "class3d_box_factor": ("class3d", "box_factor"),
    "class3d_max_pixel_a": ("class3d", "max_pixel_a"),
    "class3d_engine": ("class3d", "engine"),
    "refine3d_enabled": ("refine3d", "enabled"),
    "refine3d_max_class_resolution_a": ("refine3d", "max_class_resolution_a"),
    "refine3d_min_angular_efficiency": ("refine3d", "min_angular_efficiency"),
    "refine3d_min_class_particles": ("refine3d", "min_class_particles"),
    "refine3d_engine": ("refine3d", "engine"),
    "refine3d_max_iterations": ("refine3d", "max_iterations"),
}
_CANONICAL: dict[str, tuple[str, str]] = {}
for _flat, _field in FLAT.items():
    if _field not in _CANONICAL.values():
        _CANONICAL[_flat] = _field
_FLAT_OF = {target: name for name, target in _CANONICAL.items()}

# ProcessingJobParameter rows of a run that are not processing parameters.
RUN_KEYS = frozenset({"raw_dir", "project_dir", "requested_by"})

_SECTIONS: dict[str, type[_Section]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in RunParameters.model_fields.items()
}


def _unknown(name: str, where: str) -> BadInputError:
    names = [*FLAT, *_SECTIONS, *(f"{s}.{f}" for s, m in _SECTIONS.items() for f in m.model_fields)]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return BadInputError(f"{where}{name}: not a run parameter{hint}")


def _target(name: str, where: str) -> tuple[str, str] | str:
    """(section, field) of a flat or dotted name, or the section a section name is."""
    if name in FLAT:
        return FLAT[name]
    if name in _SECTIONS:
        return name
    section, dot, field = name.partition(".")
    if dot and section in _SECTIONS and field in _SECTIONS[section].model_fields:
        return section, field
    raise _unknown(name, where)


def _nest(source: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """A source's values by section and field (flat, dotted and section names accepted;
    ``None`` values dropped: not given)."""
    nested: dict[str, dict[str, Any]] = {}
    for name, value in source.items():
        if value is None:
            continue
        target = _target(name, where)
        if isinstance(target, str):
            if not isinstance(value, Mapping):
                raise BadInputError(f"{where}{name}: a section must be an object of fields")
            for field, item in value.items():
                if field not in _SECTIONS[target].model_fields:
                    raise _unknown(f"{target}.{field}", where)
                if item is not None:
                    nested.setdefault(target, {})[field] = item
        else:
            nested.setdefault(target[0], {})[target[1]] = value
    return nested


def _readable(exc: ValidationError) -> BadInputError:
    problems = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        problems.append(f"{loc or 'parameters'}: {error['msg']}")
    return BadInputError("; ".join(problems))


@functools.cache
def _adapter(section: str, field: str) -> TypeAdapter[Any]:
    info = _SECTIONS[section].model_fields[field]
    form: Any = (  # the field's type with its bounds
        Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    )
    return TypeAdapter(form)


def _checked(source: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """A source's values by section and field, each checked against its field alone."""
    checked: dict[str, dict[str, Any]] = {}
    for section, fields in _nest(source, where).items():
        for field, value in fields.items():
            try:
                checked.setdefault(section, {})[field] = _adapter(section, field).validate_python(
                    value
                )
            except ValidationError as exc:
                name = f"{_FLAT_OF[section, field]} ({section}.{field})"
                raise BadInputError(f"{where}{name}: {exc.errors()[0]['msg']}") from None
    return checked


def _build(
    base: RunParameters | None, sources: list[tuple[str, Mapping[str, Any] | None]]
) -> RunParameters:
    merged = (base or RunParameters()).model_dump()
    for where, source in sources:
        for section, fields in _checked(source or {}, f"{where}: ").items():
            merged[section].update(fields)
    try:  # what is left: values that contradict each other (a minimum over its maximum)
        return RunParameters.model_validate(merged)
    except ValidationError as exc:
        raise _readable(exc) from None


def build_parameters(
    *,
    base: RunParameters | None = None,
    recipe: Mapping[str, Any] | None = None,
    collection: Mapping[str, Any] | None = None,
    request: Mapping[str, Any] | None = None,
) -> RunParameters:
    """The run's parameters: ``base`` (default: the defaults), then the recipe's, the data
    collection's and the request's values, each over the one before.

    Raises
    ------
    BadInputError
        An unknown name (with the nearest known one) or a value of the wrong type or out of
        its bounds, the message naming the source and the parameter; or values that
        contradict each other (a minimum over its maximum), naming the section.
    """
    sources = [("recipe", recipe), ("data collection", collection), ("request", request)]
    return _build(base, sources)


def decode_stored(text: str) -> Any:
    """A stored value: JSON, or (rows other clients wrote) the plain text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def from_stored(rows: Mapping[str, str], *, base: RunParameters | None = None) -> RunParameters:
    """The run recorded as ``rows`` (ProcessingJobParameter key -> value; :data:`RUN_KEYS`
    skipped), over ``base``.

    Raises
    ------
    BadInputError
        When a row names no parameter or holds a value that does not fit.
    """
    values = {k: decode_stored(v) for k, v in rows.items() if k not in RUN_KEYS}
    try:
        return _build(base, [("stored parameters", values)])
    except BadInputError as exc:
        if str(exc).startswith("stored parameters: "):
            raise
        raise BadInputError(f"stored parameters: {exc}") from None


def check_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check a user's values alone (names known, each value fits its field); return them
    under their written flat names. Checks between fields wait for the whole run
    (:func:`build_parameters`), since the values not given come from the run it repeats.

    Raises
    ------
    BadInputError
        Naming the first parameter that is unknown or does not fit.
    """
    return {
        _FLAT_OF[section, field]: value
        for section, fields in _checked(values, "").items()
        for field, value in fields.items()
    }


def encode_overrides(values: Mapping[str, Any]) -> dict[str, str]:
    """A user's checked values as ProcessingJobParameter rows (written names, JSON values)."""
    return {name: json.dumps(v) for name, v in check_overrides(values).items()}
