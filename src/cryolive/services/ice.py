"""The ice service: relative ice thickness of a micrograph, as RelativeIceThickness."""

from __future__ import annotations

from pathlib import Path

from cryolive.engines.ice import estimate_ice_thickness
from cryolive.io.layout import output_base
from cryolive.io.micrograph import read_micrograph
from cryolive.io.outputs.ctf import write_ice_output
from cryolive.messaging.service import Context, Emit, Service
from cryolive.records import IceThicknessRecord
from cryolive.services._common import RESULTS, movie_ref, record_failure
from cryolive.services.messages import IceMessage, WriteResults


def measure(message: IceMessage, context: Context) -> list[Emit]:
    base = output_base(message.project_dir, "IceThickness", message.program_id, message.movie_stem)
    incident = message.total_dose_e_per_a2 * message.micrograph_pixel_size_a**2
    image, _ = read_micrograph(Path(message.plain_sum_path))
    result = estimate_ice_thickness(
        image, incident_e_per_px=incident, pixel_size_a=message.micrograph_pixel_size_a
    )
    write_ice_output(
        result,
        base.parent,
        base.name,
        micrograph=Path(message.plain_sum_path),
        incident_e_per_px=incident,
    )
    record = IceThicknessRecord(
        movie=movie_ref(message),
        motion_correction_program_id=message.program_id,
        auto_proc_program_id=message.program_id,
        minimum=result.minimum,
        q1=result.q1,
        median=result.median,
        q3=result.q3,
        maximum=result.maximum,
    )
    return [Emit(RESULTS, WriteResults(records=[record]))]


def ice_service() -> Service[IceMessage]:
    return Service("ice", IceMessage, measure, on_failure=record_failure)
