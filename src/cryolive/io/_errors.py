"""Typed read errors: each names the file and says what is wrong with it."""

from __future__ import annotations

from pathlib import Path

from cryolive.errors import BadInputError


class ReadError(BadInputError):
    """A file could not be read as what it claims to be.

    Parameters
    ----------
    path
        The file.
    reason
        What is wrong, in words a person can act on.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MovieReadError(ReadError):
    """A movie (TIFF, MRC, EER) is missing, unreadable, truncated or malformed."""


class MetadataReadError(ReadError):
    """An EPU ``.xml`` or SerialEM ``.mdoc`` is missing, unreadable or malformed."""


class GainReadError(ReadError):
    """A gain reference is missing, unreadable or malformed."""


def check_file(path: Path, error: type[ReadError]) -> None:
    """Raise ``error`` if ``path`` is not a non-empty, readable regular file."""
    if not path.exists():
        raise error(path, "no such file")
    if not path.is_file():
        raise error(path, "not a regular file")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            fh.read(1)
    except PermissionError as exc:
        raise error(path, "permission denied: the file is not readable by this user") from exc
    except OSError as exc:
        raise error(path, f"cannot be read: {exc.strerror or exc}") from exc
    if size == 0:
        raise error(path, "zero-byte file (still being written, or the write failed)")


def one_line(exc: Exception) -> str:
    """An error's message on one line (pydantic's run over several)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                for e in errors()
            )
        except (TypeError, KeyError):
            pass
    return " ".join(str(exc).split())
