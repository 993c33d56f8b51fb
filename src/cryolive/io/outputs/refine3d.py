"""What a 3D refinement writes (RELION 3.1 names): refined.mrc, half1.mrc, half2.mrc,
run_data.star (angles, origins in Å, rlnRandomSubset per particle) and fsc.star."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from cryolive.engines.recon3d import shell_resolution_a
from cryolive.engines.refine3d import Refine3DResult
from cryolive.io.maps import write_map
from cryolive.io.particle_files import ParticleStarTables, write_particles_3d

REFINED_MAP = "refined.mrc"
HALF_MAPS = ("half1.mrc", "half2.mrc")
DATA_STAR = "run_data.star"
FSC_STAR = "fsc.star"


def fsc_table(result: Refine3DResult) -> pd.DataFrame:
    """The half maps' FSC per shell: index, 1/Å, Å and the correlation."""
    box = result.full_map.shape[0]
    angstrom = shell_resolution_a(box, result.pixel_size_a)
    shells = np.arange(len(result.fsc))
    return pd.DataFrame(
        {
            "rlnSpectralIndex": shells,
            "rlnResolution": np.round(shells / (box * result.pixel_size_a), 6),
            "rlnAngstromResolution": np.round(np.where(np.isfinite(angstrom), angstrom, 999.0), 4),
            "rlnFourierShellCorrelation": np.round(result.fsc, 6),
        }
    )


def write_refine3d_outputs(
    result: Refine3DResult, out_dir: Path, *, tables: ParticleStarTables
) -> dict[str, Path]:
    """Write the maps and tables into ``out_dir``; return {name: path}.

    ``tables`` are the input particles.star's (every column kept; angles, origins and
    rlnRandomSubset replaced by the refinement's).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pixel = result.pixel_size_a
    paths = {
        "refined": write_map(out / REFINED_MAP, result.full_map, pixel_size_a=pixel),
        "half1": write_map(out / HALF_MAPS[0], result.half1, pixel_size_a=pixel),
        "half2": write_map(out / HALF_MAPS[1], result.half2, pixel_size_a=pixel),
    }
    write_particles_3d(
        out / DATA_STAR,
        tables,
        angles_deg=result.angles_deg,
        origins_a=result.origins_a,
        columns={"rlnRandomSubset": result.subset},
    )
    paths["data"] = out / DATA_STAR
    general = {
        "rlnFinalResolution": round(result.resolution_a, 4),
        "rlnCurrentIteration": result.iterations,
    }
    starfile.write({"general": general, "fsc": fsc_table(result)}, out / FSC_STAR, overwrite=True)
    paths["fsc"] = out / FSC_STAR
    return paths
