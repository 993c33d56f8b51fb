"""Typed read errors: each names the file and says what is wrong with it."""

from __future__ import annotations

import re
from pathlib import Path

from cryolive.errors import BadInputError

# A bytes literal in a library's message ("not a TIFF file: header=b'root'") is the file's
# content; control characters would forge lines in logs and pages.
_BYTES = re.compile(r"""(?<!\w)b(['"])(?:\\.|(?!\1).)*\1""")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_REASON = 300


def without_content(text: str) -> str:
    """``text`` with any bytes literal (a file's content, echoed by a library) left out,
    control characters replaced by spaces, and at most ``MAX_REASON`` characters."""
    text = _CONTROL.sub(" ", _BYTES.sub("(content not shown)", text))
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


class ReadError(BadInputError):
    """A file could not be read as what it claims to be.

    Parameters
    ----------
    path
        The file.
    reason
        What is wrong, in words a person can act on. It is shown to users: it never echoes
        the file's content (:func:`without_content` drops what a library quotes of it).
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = without_content(reason)
        # a file name with a newline must not forge a second line in a log or a page
        super().__init__(f"{_CONTROL.sub('?', str(self.path))}: {self.reason}")


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
