"""The pipeline's services, one per stage (thin adapters around the engines), and the writer

:func:`pipeline_registry` names every service recipes may use; ``cryolive worker --registry
cryolive.services:registry`` runs any of them on its own.
"""

from __future__ import annotations

from cryolive.config import CurationThresholds, JobsSettings, get_settings
from cryolive.messaging.echo import echo_service
from cryolive.messaging.service import Registry

# A run's parameters and their defaults: cryolive.params.RunParameters.


def pipeline_registry(
    database_url: str,
    curation: CurationThresholds | None = None,
    jobs: JobsSettings | None = None,
) -> Registry:
    """Every service of the pipeline; heavy 3D steps run on the runner ``jobs`` names (local
    processes when None)."""
    from cryolive.jobs import make_runner
    from cryolive.services.class2d import class2d_service
    from cryolive.services.class3d import class3d_service
    from cryolive.services.ctf import ctf_service
    from cryolive.services.ice import ice_service
    from cryolive.services.motioncorr import motioncorr_service
    from cryolive.services.pick import pick_service
    from cryolive.services.refine3d import refine3d_service
    from cryolive.services.writer import writer_service

    runner = make_runner(jobs or JobsSettings())
    return Registry(
        [
            echo_service(),
            motioncorr_service(),
            ctf_service(),
            ice_service(),
            pick_service(),
            class2d_service(database_url, curation or CurationThresholds()),
            class3d_service(runner, database_url),
            refine3d_service(runner, database_url),
            writer_service(database_url),
        ]
    )


def registry() -> Registry:
    """The registry for the settings of this process (``CRYOLIVE_…``)."""
    settings = get_settings()
    return pipeline_registry(settings.database, settings.curation, settings.jobs)
