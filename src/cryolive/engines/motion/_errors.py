"""The error a movie that cannot be motion-corrected raises."""

from __future__ import annotations

from cryolive.errors import BadInputError


class UnusableMovieError(BadInputError):
    """A movie from which no trustworthy motion correction can be made.

    Attributes
    ----------
    reason : str
        A short code: ``"non-finite"``, ``"too-few-frames"``, ``"empty"``, ``"shape"``,
        ``"gain-shape"``.
    detail : str
        What was found, for a person.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
