"""Whether a movie file is whole, proven from its structure without decoding a frame.

A camera PC or a network share can stall halfway through a movie; a file whose size has not
changed for a while is then still only part of a movie. The watcher registers a movie only when
its size has settled *and* this check passes:

- TIFF (EPU ``_fractions.tiff``, SerialEM ``.tif``) and EER (a BigTIFF): the chain of image
  directories is walked to its end, every directory and every strip or tile it names lies
  inside the file, and the number of frames (EER: EER frames) equals what the metadata promises
  when it is known (not for EER, whose metadata states the fractions of EPU's own output).
- MRC: the file holds the 1024-byte header, the extended header (FEI's for Falcon movies) and
  ``nz`` frames of ``nx * ny`` samples of the mode's size.

Three outcomes: ``complete``; ``incomplete`` (what a file that is still being written looks
like: it may become whole, so wait); ``invalid`` (not a movie of the kind its name says, and
more bytes will not change that: register it so that the reader records why).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

State = Literal["complete", "incomplete", "invalid"]

_MRC_SAMPLE_BYTES = {0: 1.0, 1: 2.0, 2: 4.0, 3: 4.0, 4: 8.0, 6: 2.0, 12: 2.0, 101: 0.5}
_EER_COMPRESSIONS = (65000, 65001, 65002)
_MAX_DIRECTORIES = 1_000_000  # a loop guard far above any camera's frame count
# TIFF field types: size in bytes of one value
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}
_OFFSETS = (273, 324)  # StripOffsets, TileOffsets
_COUNTS = (279, 325)  # StripByteCounts, TileByteCounts
_COMPRESSION = 259


@dataclass(frozen=True)
class Completeness:
    """What :func:`check_movie` found.

    Attributes
    ----------
    state
        ``complete``, ``incomplete`` (wait: it may still be written) or ``invalid``.
    frames
        Frames found (EER: EER frames), when the structure could be read that far.
    reason
        Why the file is not complete, for a person; empty when it is.
    """

    state: State
    frames: int | None = None
    reason: str = ""

    @property
    def complete(self) -> bool:
        return self.state == "complete"


class _Incomplete(Exception):
    pass


class _Invalid(Exception):
    pass


def check_movie(path: Path | str, *, expected_frames: int | None = None) -> Completeness:
    """Whether the movie at ``path`` is whole (see the module's description).

    Parameters
    ----------
    path
        A ``.tif``/``.tiff``, ``.eer`` or ``.mrc``/``.mrcs`` file.
    expected_frames
        Frames the acquisition metadata promises (not checked for EER).
    """
    path = Path(path)
    if expected_frames is not None and expected_frames < 1:
        raise ValueError(f"expected_frames: must be at least 1, got {expected_frames}")
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
        if size == 0:
            return Completeness("incomplete", 0, "empty: nothing written yet")
        with path.open("rb") as fh:
            if suffix in (".mrc", ".mrcs"):
                frames = _mrc_frames(fh, size)
            elif suffix in (".tif", ".tiff", ".eer"):
                frames = _tiff_frames(fh, size, eer=suffix == ".eer")
            else:
                return Completeness("invalid", None, f"not a movie suffix: {suffix!r}")
    except _Incomplete as exc:
        return Completeness("incomplete", None, str(exc))
    except _Invalid as exc:
        return Completeness("invalid", None, str(exc))
    except OSError as exc:
        return Completeness("invalid", None, f"cannot be read: {exc.strerror or exc}")
    if expected_frames is not None and suffix != ".eer" and frames != expected_frames:
        if frames < expected_frames:
            why = f"{frames} of the {expected_frames} frames its metadata promises"
            return Completeness("incomplete", frames, why)
        why = f"{frames} frames but its metadata promises {expected_frames}"
        return Completeness("invalid", frames, why)
    return Completeness("complete", frames)


def _read(fh: BinaryIO, offset: int, n: int, size: int, what: str) -> bytes:
    if offset + n > size:
        raise _Incomplete(f"{what} ends at byte {offset + n}, past the file's {size}")
    fh.seek(offset)
    return fh.read(n)


def _mrc_frames(fh: BinaryIO, size: int) -> int:
    head = _read(fh, 0, 1024, size, "the MRC header")
    order = ">" if head[212] == 0x11 else "<"
    nx, ny, nz, mode = struct.unpack_from(order + "4i", head, 0)
    (nsymbt,) = struct.unpack_from(order + "i", head, 92)
    if head[208:212] != b"MAP " and not (0 < nx < 65536 and 0 < ny < 65536):
        raise _Invalid("not an MRC file (no MAP stamp, implausible size)")
    if min(nx, ny, nz) <= 0 or nsymbt < 0 or mode not in _MRC_SAMPLE_BYTES:
        raise _Invalid(f"malformed MRC header (nx={nx} ny={ny} nz={nz} mode={mode})")
    needed = 1024 + nsymbt + int(nx * ny * nz * _MRC_SAMPLE_BYTES[mode])
    if size < needed:
        raise _Incomplete(f"the header promises {needed} bytes but the file has {size}")
    return int(nz)


def _tiff_frames(fh: BinaryIO, size: int, *, eer: bool) -> int:
    head = fh.read(16)
    if len(head) < 8:
        raise _Incomplete("shorter than a TIFF header")
    if head[:2] not in (b"II", b"MM"):
        raise _Invalid("not a TIFF file (no II/MM byte-order mark)")
    order = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack(order + "H", head[2:4])
    if version == 42:
        big, first = False, struct.unpack(order + "I", head[4:8])[0]
    elif version == 43:
        if len(head) < 16:
            raise _Incomplete("shorter than a BigTIFF header")
        big, first = True, struct.unpack(order + "Q", head[8:16])[0]
    else:
        raise _Invalid(f"not a TIFF file (version {version})")
    if eer and not big:
        raise _Invalid("not an EER file (EER movies are BigTIFF)")
    frames, offset = 0, int(first)
    seen: set[int] = set()
    while offset:
        if offset in seen or len(seen) > _MAX_DIRECTORIES:
            raise _Invalid(f"malformed: directory {len(seen)} points back at byte {offset}")
        seen.add(offset)
        offset, is_frame = _directory(fh, offset, size, order, big=big, eer=eer)
        frames += is_frame
    if frames == 0:
        raise _Incomplete("no image directory yet")
    return frames


def _directory(
    fh: BinaryIO, offset: int, size: int, order: str, *, big: bool, eer: bool
) -> tuple[int, bool]:
    """Check one image directory and its data; return (next directory, whether a frame)."""
    count_fmt, entry_size, pointer_fmt = ("Q", 20, "Q") if big else ("H", 12, "I")
    count_size, pointer_size = struct.calcsize(count_fmt), struct.calcsize(pointer_fmt)
    (n,) = struct.unpack(order + count_fmt, _read(fh, offset, count_size, size, "a directory"))
    body = _read(fh, offset + count_size, n * entry_size + pointer_size, size, "a directory")
    tags: dict[int, list[int]] = {}
    for i in range(n):
        entry = body[i * entry_size : (i + 1) * entry_size]
        tag, kind = struct.unpack_from(order + "HH", entry, 0)
        (values,) = struct.unpack_from(order + pointer_fmt, entry, 4)  # count: as wide as a pointer
        width = _TYPE_SIZES.get(kind, 1)
        inline = values * width <= pointer_size
        if not inline:  # every value out of line must lie inside the file, read or not
            (where,) = struct.unpack_from(order + pointer_fmt, entry, 4 + pointer_size)
            if where + values * width > size:
                raise _Incomplete(f"tag {tag}'s values end past the file's {size} bytes")
        if tag not in (*_OFFSETS, *_COUNTS, _COMPRESSION):
            continue
        if width not in (2, 4, 8):
            raise _Invalid(f"malformed: tag {tag} has field type {kind}")
        fmt = order + str(values) + {2: "H", 4: "I", 8: "Q"}[width]
        if inline:
            data = entry[4 + pointer_size : 4 + pointer_size + values * width]
        else:
            data = _read(fh, where, values * width, size, f"tag {tag}'s values")
        tags[tag] = list(struct.unpack(fmt, data))
    offsets = next((tags[t] for t in _OFFSETS if t in tags), [])
    counts = next((tags[t] for t in _COUNTS if t in tags), [])
    if len(offsets) != len(counts):
        raise _Invalid("malformed: strip offsets and byte counts differ in number")
    for start, length in zip(offsets, counts, strict=True):
        if start + length > size:
            raise _Incomplete(f"frame data ends at byte {start + length}, past the file's {size}")
    (following,) = struct.unpack_from(order + pointer_fmt, body, n * entry_size)
    compression = tags.get(_COMPRESSION, [1])[0]
    is_frame = compression in _EER_COMPRESSIONS if eer else bool(offsets)
    return following, is_frame
