"""Small pieces the per-movie services share, and the one place where a failure of any of
them becomes the movie's recorded failure (:func:`record_failure`, the services'
``on_failure``)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import make_engine, session_factory
from cryolive.errors import BadInputError, printable, short_reason
from cryolive.messaging.service import Emit
from cryolive.records import FailureRecord, MovieRef
from cryolive.services.messages import MovieStep, WriteResults

RESULTS = "results"  # the output every service sends its records on, to the writer


@cache
def sessions_for(database_url: str) -> sessionmaker[Session]:
    """One engine per process and database, made when the first message needs it."""
    return session_factory(make_engine(database_url))


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


def record_failure(parameters: Mapping[str, Any], stage: str, error: BaseException) -> list[Emit]:
    """The failure record of a per-movie message whose handler raised ``error``.

    Bad input keeps its own message (it names the file and what is wrong with it); anything
    else is a fault of cryolive or its surroundings, said as such, with the error's type.
    """
    fields = {name: parameters[name] for name in MovieStep.model_fields if name in parameters}
    message = MovieStep.model_validate(fields)
    if isinstance(error, BadInputError):
        text = str(error) or type(error).__name__
    else:
        text = f"{stage} failed inside cryolive ({type(error).__name__}: {error}); see the logs"
    return failed(message, stage=stage, reason=short_reason(error), text=printable(text))
