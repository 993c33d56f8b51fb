"""Small pieces the per-movie services share."""

from __future__ import annotations

from cryolive.db.records import FailureRecord, MovieRef
from cryolive.messaging.service import Emit
from cryolive.services.messages import MovieStep, WriteResults

RESULTS = "results"  # the output every service sends its records on, to the writer


def movie_ref(message: MovieStep) -> MovieRef:
    return MovieRef(
        data_collection_id=message.data_collection_id, movie_full_path=message.movie_path
    )


def failed(message: MovieStep, *, stage: str, reason: str, text: str) -> list[Emit]:
    """Record a failure a person can act on, and send nothing further down the recipe."""
    record = FailureRecord(
        movie=movie_ref(message),
        auto_proc_program_id=message.program_id,
        stage=stage,
        reason=reason[:60],
        message=text,
    )
    return [Emit(RESULTS, WriteResults(records=[record]))]
