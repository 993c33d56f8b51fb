"""The 3D panel's API models (resolutions in Å, B-factors in Å², pixel sizes in Å)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Class3D(_Out):
    particle_classification_id: int
    class_number: int
    particles: int
    distribution: float | None
    resolution_a: float | None
    completeness: float | None
    angular_efficiency: float | None
    selected: bool
    has_map: bool


class Run3D(_Out):
    group_id: int
    run_number: int
    particles: int
    symmetry: str | None
    pixel_size_a: float | None
    initial_model_particles: int | None
    initial_model_resolution_a: float | None
    classes: list[Class3D]


class BFactorPoint(_Out):
    particles: int
    resolution_a: float


class Refinement(_Out):
    particle_classification_id: int
    run_number: int
    particles: int
    symmetry: str | None
    pixel_size_a: float | None
    resolution_a: float | None
    completeness: float | None
    angular_efficiency: float | None
    bfactor_a2: float | None
    has_map: bool
    points: list[BFactorPoint]


class Panel3D(_Out):
    selected_particles: int
    runs: list[Run3D]
    refinements: list[Refinement]


class MapPreview(BaseModel):
    """A map for the browser: ``box``³ voxels (z, y, x order), each quantised to a byte,
    value = minimum + byte * (maximum - minimum) / 255, the bytes base64-encoded."""

    box: int
    voxel_a: float
    mean: float
    sd: float
    minimum: float
    maximum: float
    values_base64: str


class Fsc(_Out):
    resolution_per_a: list[float]
    curves: dict[str, list[float]]
    final_resolution_a: float | None
    bfactor_a2: float | None


class AngularDistribution(BaseModel):
    particles: int
    tilt_deg: list[float]
    rot_deg: list[float]
    counts: list[list[int]]
