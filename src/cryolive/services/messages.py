"""What the pipeline's services receive and send on. Units are in the names.

The run's parameters arrive as typed sections of :class:`cryolive.params.RunParameters`
(``motion``, ``ctf``, ``picking``, ``extract``, ``class2d``), whole, with no defaults here: the
defaults live in :mod:`cryolive.params` only. What the data collection measured (pixel size,
dose, voltage) comes as plain required fields.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cryolive.params import (
    Class2DParameters,
    Class3DParameters,
    CtfParameters,
    ExtractParameters,
    MotionParameters,
    PickingParameters,
    Refine3DParameters,
)
from cryolive.records import AnyRecord


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MovieStep(_Message):
    """The part of every per-movie message that says which movie of which run it is."""

    movie_path: str = Field(description="Full path of the movie file")
    data_collection_id: int
    program_id: int = Field(description="AutoProcProgram of the processing run")
    project_dir: str = Field(description="RELION project folder of the raw folder")
    movie_stem: str = Field(description="Output name stem, relative to the raw folder")


class MotionCorrMessage(MovieStep):
    pixel_size_a: float = Field(gt=0)
    dose_per_frame_e_per_a2: float = Field(gt=0)
    voltage_kv: float = Field(gt=0)
    motion: MotionParameters


class MotionCorrOutput(_Message):
    """Sent on to CTF and ice estimation."""

    micrograph_path: str = Field(description="Dose-weighted sum (MRC)")
    plain_sum_path: str = Field(description="Sum without dose weighting, in counts (MRC)")
    micrograph_pixel_size_a: float
    total_dose_e_per_a2: float


class CtfMessage(MovieStep):
    micrograph_path: str
    micrograph_pixel_size_a: float = Field(gt=0)
    voltage_kv: float = Field(gt=0)
    ctf: CtfParameters


class CtfOutput(_Message):
    """Sent on to picking: the micrograph's CTF (Å, degrees; positive defocus is underfocus)."""

    defocus_u_a: float
    defocus_v_a: float
    astigmatism_angle_deg: float


class PickMessage(MovieStep):
    micrograph_path: str
    micrograph_pixel_size_a: float = Field(gt=0)
    defocus_u_a: float
    defocus_v_a: float
    astigmatism_angle_deg: float
    voltage_kv: float = Field(gt=0)
    picking: PickingParameters
    extract: ExtractParameters
    ctf: CtfParameters = Field(description="Its Cs and amplitude contrast, for the STAR optics")


class PickOutput(_Message):
    """Sent on to 2D classification: the micrograph's extracted particles."""

    particles_star: str = Field(description="RELION 3.1 particles.star of the micrograph")
    particles: int = Field(ge=0)
    mask_diameter_a: float = Field(gt=0, description="The largest diameter + 10%")


class Class2DMessage(MovieStep):
    """One micrograph's particles for the streaming 2D classification of its run."""

    particles_star: str
    particles: int = Field(ge=0)
    mask_diameter_a: float = Field(gt=0, description="Circular mask: the largest diameter + 10%")
    class2d: Class2DParameters


class Class3DTrigger(_Message):
    """Sent by 2D classification after each classification of a batch: where its selected
    particles are, and how many."""

    movie_path: str = Field(description="The latest micrograph of the batch")
    batch_number: int = Field(ge=1)
    particles_in_batch: int = Field(ge=0)
    selected_star: str = Field(description="particles.star of the selected classes' particles")
    selected_particles: int = Field(ge=0)


class _RunStep(_Message):
    data_collection_id: int
    program_id: int = Field(description="AutoProcProgram of the processing run")
    project_dir: str = Field(description="RELION project folder of the raw folder")
    movie_path: str = Field(description="The latest micrograph whose particles are used")


class Class3DMessage(_RunStep):
    """One 2D classification's selected particles, for the run's live 3D."""

    batch_number: int = Field(ge=1)
    particles_in_batch: int = Field(ge=0)
    selected_star: str
    selected_particles: int = Field(ge=0)
    particle_diameter_a: float = Field(gt=0, description="The largest particle diameter")
    class3d: Class3DParameters
    refine3d: Refine3DParameters


class Refine3DMessage(_RunStep):
    """The best class of a 3D run, to refine and postprocess."""

    run_number: int = Field(ge=1)
    class_number: int = Field(ge=1)
    class_map: str = Field(description="The class's map (MRC), the refinement's reference")
    class3d_data_star: str = Field(description="run_data.star of the 3D classification")
    particles: int = Field(ge=1, description="Particles of the class")
    symmetry: str
    refine3d: Refine3DParameters = Field(
        default_factory=Refine3DParameters, description="The run's refinement parameters"
    )


class IceMessage(MovieStep):
    plain_sum_path: str
    micrograph_pixel_size_a: float = Field(gt=0)
    total_dose_e_per_a2: float = Field(gt=0)


class WriteResults(_Message):
    """Results for the writer: typed records that name their parents by natural key."""

    records: list[AnyRecord] = Field(min_length=1)
