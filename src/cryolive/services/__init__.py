"""The pipeline's services (thin adapters around the engines), the watcher and the writer.

:func:`pipeline_registry` names every service recipes may use; ``cryolive worker --registry
cryolive.services:registry`` runs any of them on its own.
"""

from __future__ import annotations

from cryolive.config import get_settings
from cryolive.messaging.echo import echo_service
from cryolive.messaging.service import Registry

# Values every run starts with unless the data collection or the user says otherwise.
DEFAULT_PARAMETERS: dict[str, object] = {
    "frames": None,
    "gain_path": None,
    "eer_grouping": None,
    "patches_x": 5,
    "patches_y": 5,
    "bfactor_a2": 500.0,  # whole-frame alignment (docs/motioncorr.md)
    "cs_mm": 2.7,
    "amplitude_contrast": 0.07,
    "ctf_min_resolution_a": 30.0,
    "ctf_max_resolution_a": 5.0,
    "ctf_min_defocus_a": 3000.0,
    "ctf_max_defocus_a": 50000.0,
    "fit_phase_shift": False,
    "particle_diameter_min_a": 70.0,
    "particle_diameter_max_a": 130.0,
    "pick_threshold": 5.0,
    "picker": "log",
    # 2D classification in streaming batches (its mask: the largest diameter + 10%)
    "class2d_classes": 50,
    "class2d_batch_size": 50_000,
    "class2d_min_particles": 1_000,
    "class2d_particles_per_class": 100,
    "class2d_iterations": 20,
    "box_px": None,
}


def pipeline_registry(database_url: str) -> Registry:
    from cryolive.services.class2d import class2d_service
    from cryolive.services.ctf import ctf_service
    from cryolive.services.ice import ice_service
    from cryolive.services.motioncorr import motioncorr_service
    from cryolive.services.pick import pick_service
    from cryolive.services.writer import writer_service

    return Registry(
        [
            echo_service(),
            motioncorr_service(),
            ctf_service(),
            ice_service(),
            pick_service(),
            class2d_service(),
            writer_service(database_url),
        ]
    )


def registry() -> Registry:
    """The registry for the settings of this process (``CRYOLIVE_…``)."""
    return pipeline_registry(get_settings().database)
