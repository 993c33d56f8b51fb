"""What the de novo initial model and 3D classification write (RELION 3.1 names and labels):

- initial model: ``initial_model.mrc`` (the largest class), ``initial_model_class001.mrc`` …
  when K > 1, ``run_data.star`` (every particle with rlnAngleRot/Tilt/Psi and rlnClassNumber),
  ``run_model.star``;
- 3D classification: ``class001.mrc`` …, ``run_data.star`` (the same columns), ``model.star``
  (``data_model_general``; ``data_model_classes`` with rlnReferenceImage, rlnClassDistribution,
  rlnEstimatedResolution; ``data_cryolive_classes`` with each class's angular efficiency and
  ranking score, a block RELION leaves alone).

Origins are the particles' given origins plus the offsets the translation search found
(rlnOriginXAngst/YAngst): RELION continues from these files as from its own. The initial
model's rlnEstimatedResolution is each class's half-set FSC 0.143 estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from cryolive.engines.class3d import Class3DResult
from cryolive.engines.initial_model import InitialModelResult
from cryolive.io.maps import write_map
from cryolive.io.particle_files import ParticleStarTables, write_particles_3d


@dataclass(frozen=True)
class Class3DFiles:
    """Paths written by :func:`write_initial_model_outputs` / :func:`write_class3d_outputs`."""

    maps: tuple[Path, ...]  # one per class, in class order (rlnClassNumber 1, 2, …)
    data: Path  # run_data.star
    model: Path  # model.star / run_model.star
    main: Path  # initial_model.mrc, or the best class's map


def _model_tables(
    names: list[str],
    fractions: np.ndarray,
    resolution_a: np.ndarray,
    pixel_size_a: float,
    box: int,
) -> dict[str, pd.DataFrame]:
    general = pd.DataFrame(
        {
            "rlnReferenceDimensionality": [3],
            "rlnDataDimensionality": [2],
            "rlnOriginalImageSize": [box],
            "rlnCurrentImageSize": [box],
            "rlnPixelSize": [pixel_size_a],
            "rlnNrClasses": [len(names)],
        }
    )
    classes = pd.DataFrame(
        {
            "rlnReferenceImage": names,
            "rlnClassDistribution": np.round(fractions, 6),
            "rlnEstimatedResolution": np.round(resolution_a, 3),
        }
    )
    return {"model_general": general, "model_classes": classes}


def write_initial_model_outputs(
    result: InitialModelResult, out_dir: Path, tables: ParticleStarTables
) -> Class3DFiles:
    """Write the initial model's maps, run_data.star and run_model.star into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    k = result.maps.shape[0]
    box = result.maps.shape[1]
    main = write_map(
        out_dir / "initial_model.mrc",
        result.maps[int(np.argmax(result.class_sizes))],
        pixel_size_a=result.pixel_size_a,
    )
    maps = (
        tuple(
            write_map(
                out_dir / f"initial_model_class{c + 1:03d}.mrc",
                result.maps[c],
                pixel_size_a=result.pixel_size_a,
            )
            for c in range(k)
        )
        if k > 1
        else (main,)
    )
    data = out_dir / "run_data.star"
    write_particles_3d(
        data, tables, angles_deg=result.angles_deg, origins_a=result.origins_a,
        columns={"rlnClassNumber": result.classes + 1},
    )  # fmt: skip
    model = out_dir / "run_model.star"
    tabs = _model_tables(
        [p.name for p in maps],
        result.class_fractions,
        result.resolution_a,
        result.pixel_size_a,
        box,
    )
    starfile.write(tabs, model, overwrite=True)
    return Class3DFiles(maps=maps, data=data, model=model, main=main)


def write_class3d_outputs(
    result: Class3DResult, out_dir: Path, tables: ParticleStarTables
) -> Class3DFiles:
    """Write class001.mrc …, run_data.star and model.star into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    k, box = result.maps.shape[0], result.maps.shape[1]
    maps = tuple(
        write_map(
            out_dir / f"class{c + 1:03d}.mrc", result.maps[c], pixel_size_a=result.pixel_size_a
        )
        for c in range(k)
    )
    data = out_dir / "run_data.star"
    write_particles_3d(
        data, tables, angles_deg=result.angles_deg, origins_a=result.origins_a,
        columns={"rlnClassNumber": result.classes + 1},
    )  # fmt: skip
    model = out_dir / "model.star"
    tabs = _model_tables(
        [p.name for p in maps],
        result.class_fractions,
        result.resolution_a,
        result.pixel_size_a,
        box,
    )
    tabs["cryolive_classes"] = pd.DataFrame(
        {
            "rlnClassNumber": np.arange(1, k + 1),
            "cryoliveParticles": result.class_sizes,
            "cryoliveAngularEfficiency": np.round(result.angular_efficiency, 4),
            "cryoliveScore": np.round(result.score, 6),
            "cryoliveBest": (np.arange(k) == result.best_class).astype(int),
        }
    )
    starfile.write(tabs, model, overwrite=True)
    return Class3DFiles(maps=maps, data=data, model=model, main=maps[result.best_class])
