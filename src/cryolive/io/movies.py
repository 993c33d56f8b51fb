"""Read a movie (EPU ``_fractions.tiff``, MRC stack, Falcon EER) into a ``(n, y, x)`` array.

The readers check what a partly written or damaged file looks like (zero bytes, a strip or
data block that ends past the end of the file, pages of different shapes, a frame count other
than the one the metadata promised) and raise :class:`MovieReadError` saying so.
"""

from __future__ import annotations

import struct
from pathlib import Path

import mrcfile
import mrcfile.utils
import numpy as np
import tifffile

from cryolive.io._errors import MovieReadError, check_file

MOVIE_SUFFIXES = (".tif", ".tiff", ".mrc", ".mrcs", ".eer")


def read_movie(
    path: Path | str,
    *,
    expected_frames: int | None = None,
    eer_group: int | None = None,
    eer_upsampling: int = 1,
) -> np.ndarray:
    """Read every frame of a movie.

    Parameters
    ----------
    path
        A ``.tif``/``.tiff`` (one page per frame), ``.mrc``/``.mrcs`` or ``.eer`` file.
    expected_frames
        Number of frames (after EER grouping) the acquisition metadata promises; a movie with
        another number raises :class:`MovieReadError`.
    eer_group
        EER only, required there: number of consecutive EER frames summed into one returned
        fraction. Trailing EER frames that do not fill a group are dropped.
    eer_upsampling
        EER only: 1 renders at the physical pixel grid (4k on a Falcon 4/4i), 2 at twice the
        sampling (8k) from the recorded sub-pixel positions.

    Returns
    -------
    frames : (n, y, x) ndarray
        In the file's own dtype (uint8, uint16, int16, float32 …); EER fractions are uint16.

    Raises
    ------
    MovieReadError
        The file is missing, empty, unreadable, truncated, malformed, or has the wrong number
        of frames.
    ValueError
        A parameter is out of range.
    """
    path = Path(path)
    if eer_upsampling not in (1, 2):
        raise ValueError(f"eer_upsampling: must be 1 (4k) or 2 (8k), got {eer_upsampling}")
    if eer_group is not None and eer_group < 1:
        raise ValueError(f"eer_group: must be at least 1, got {eer_group}")
    check_file(path, MovieReadError)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        frames = _read_tiff(path)
    elif suffix in (".mrc", ".mrcs"):
        frames = _read_mrc(path)
    elif suffix == ".eer":
        if eer_group is None:
            raise MovieReadError(
                path, "an EER movie, but the run sets no eer_grouping (EER frames per fraction)"
            )
        frames = _read_eer(path, group=eer_group, upsampling=eer_upsampling)
    else:
        raise MovieReadError(path, f"unknown movie suffix {suffix!r}; expected {MOVIE_SUFFIXES}")
    _check_samples(path, frames.dtype)
    if expected_frames is not None and frames.shape[0] != expected_frames:
        raise MovieReadError(
            path, f"has {frames.shape[0]} frames but its metadata promises {expected_frames}"
        )
    return frames


# Larger frames than any camera makes (a K3 super-resolution frame is 11520 x 8184) are a
# damaged or hostile header: refuse them before decoding allocates the memory they claim.
MAX_FRAME_PIXELS = 16384 * 16384
MAX_MOVIE_BYTES = 64 * 2**30


def _check_size(path: Path, n: int, shape: tuple[int, ...], itemsize: int) -> None:
    pixels = 1
    for side in shape:
        pixels *= int(side)
    if any(int(side) <= 0 for side in shape) or pixels > MAX_FRAME_PIXELS:
        raise MovieReadError(path, f"implausible frame size {tuple(shape)} in the header")
    if n * pixels * itemsize > MAX_MOVIE_BYTES:
        raise MovieReadError(
            path, f"{n} frames of {tuple(shape)} would need {n * pixels * itemsize} bytes"
        )


def _check_samples(path: Path, dtype: np.dtype) -> None:
    """Movies hold integer counts or 32/16-bit floats; anything else is not a movie."""
    if not (dtype.kind in "iu" and dtype.itemsize <= 4) and dtype not in (
        np.float16,
        np.float32,
    ):
        raise MovieReadError(path, f"samples of type {dtype} are not movie data")


def _check_ifd_chain(path: Path, size: int) -> None:
    """Follow the chain of TIFF directories; raise if one points at or runs past the end."""
    with path.open("rb") as fh:
        head = fh.read(16)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            raise MovieReadError(path, "not a TIFF file (no II/MM byte-order mark)")
        order = "<" if head[:2] == b"II" else ">"
        version = struct.unpack(order + "H", head[2:4])[0]
        if version == 42:
            count_fmt, entry_size, pointer_fmt, first = "H", 12, "I", head[4:8]
        elif version == 43 and len(head) >= 16:
            count_fmt, entry_size, pointer_fmt, first = "Q", 20, "Q", head[8:16]
        else:
            raise MovieReadError(path, f"not a TIFF file (version {version})")
        offset = struct.unpack(order + pointer_fmt, first)[0]
        count_size, pointer_size = struct.calcsize(count_fmt), struct.calcsize(pointer_fmt)
        index = 0
        seen: set[int] = set()
        while offset:
            if offset in seen:
                raise MovieReadError(path, f"malformed: directory {index} points back at {offset}")
            seen.add(offset)
            if offset + count_size > size:
                raise MovieReadError(
                    path, f"truncated: directory {index} would start at byte {offset} "
                    f"but the file has {size} (still being written, or the copy was cut)",
                )  # fmt: skip
            fh.seek(offset)
            n = struct.unpack(order + count_fmt, fh.read(count_size))[0]
            end = offset + count_size + n * entry_size + pointer_size
            if end > size:
                raise MovieReadError(path, f"truncated: directory {index} ends past the file end")
            fh.seek(end - pointer_size)
            offset = struct.unpack(order + pointer_fmt, fh.read(pointer_size))[0]
            index += 1


def _check_segments(path: Path, tif: tifffile.TiffFile) -> None:
    """Raise if the file ends inside a directory or inside any page's data: a truncated write."""
    size = path.stat().st_size
    _check_ifd_chain(path, size)
    for index, page in enumerate(tif.pages):
        if not isinstance(page, tifffile.TiffPage):
            page = page.aspage()
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
            if offset + count > size:
                raise MovieReadError(
                    path,
                    f"truncated: frame {index} needs bytes up to {offset + count} "
                    f"but the file has {size} (still being written, or the copy was cut)",
                )


def _open_tiff(path: Path, *, superres: int = 0) -> tifffile.TiffFile:
    try:
        return tifffile.TiffFile(path, superres=superres)
    except MemoryError:
        raise
    except Exception as exc:  # tifffile raises many types (struct.error, …) for damaged files
        raise MovieReadError(path, f"not a readable TIFF: {exc}") from exc


def _read_tiff(path: Path) -> np.ndarray:
    with _open_tiff(path) as tif:
        if len(tif.pages) == 0:
            raise MovieReadError(path, "TIFF has no pages")
        _check_segments(path, tif)
        shapes = {page.shape for page in tif.pages}
        if len(shapes) != 1:
            raise MovieReadError(path, f"frames differ in shape: {sorted(shapes)}")
        first = tif.pages[0]
        _check_size(path, len(tif.pages), next(iter(shapes)), int(np.dtype(first.dtype).itemsize))
        try:
            frames = tif.asarray(key=range(len(tif.pages)))
        except Exception as exc:  # a codec error can be of any type
            raise MovieReadError(path, f"frame data cannot be decoded: {exc}") from exc
    if frames.ndim == 2:
        frames = frames[np.newaxis]
    if frames.ndim != 3:
        raise MovieReadError(path, f"expected single-channel frames, got shape {frames.shape}")
    return frames


def _check_mrc_extent(path: Path) -> None:
    """Refuse a header whose extended header runs past the end of the file before mrcfile
    reads (and allocates) what it claims."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(1024)
    if len(head) < 1024:
        raise MovieReadError(path, f"truncated: {len(head)} bytes, less than an MRC header")
    order = ">" if head[212] == 0x11 else "<"
    (nsymbt,) = struct.unpack_from(order + "i", head, 92)
    if nsymbt < 0 or 1024 + nsymbt > size:
        raise MovieReadError(
            path, f"truncated or malformed: an extended header of {nsymbt} bytes in {size}"
        )


def _read_mrc(path: Path) -> np.ndarray:
    _check_mrc_extent(path)
    try:
        with mrcfile.open(path, permissive=False, header_only=True) as mrc:
            header = mrc.header
            mode = int(header.mode)
            n_bytes = int(header.nx) * int(header.ny) * int(header.nz)
            n_bytes *= mrcfile.utils.dtype_from_mode(mode).itemsize
            needed = 1024 + int(header.nsymbt) + n_bytes
            item = mrcfile.utils.dtype_from_mode(mode).itemsize
            _check_size(path, max(1, int(header.nz)), (int(header.ny), int(header.nx)), item)
    except MovieReadError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise MovieReadError(path, f"not a readable MRC file: {exc}") from exc
    size = path.stat().st_size
    if size < needed:
        raise MovieReadError(
            path,
            f"truncated: the header promises {needed} bytes but the file has {size} "
            "(still being written, or the copy was cut)",
        )
    try:
        with mrcfile.open(path, permissive=False, mode="r") as mrc:
            data = np.asarray(mrc.data).copy()
    except (ValueError, OSError, EOFError) as exc:
        raise MovieReadError(path, f"not a readable MRC file: {exc}") from exc
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        raise MovieReadError(path, f"expected a stack of 2D frames, got shape {data.shape}")
    return data


def _read_eer(path: Path, *, group: int, upsampling: int) -> np.ndarray:
    with _open_tiff(path, superres=upsampling - 1) as tif:
        if not tif.is_eer:
            raise MovieReadError(path, "not an EER file (no EER metadata in a BigTIFF)")
        _check_segments(path, tif)
        pages = [p for p in tif.pages if p.compression in (65000, 65001, 65002)]
        n_groups = len(pages) // group
        if n_groups == 0:
            raise MovieReadError(path, f"has {len(pages)} EER frames, fewer than eer_group={group}")
        shape = pages[0].shape
        _check_size(path, n_groups, shape, 2)
        out = np.zeros((n_groups, *shape), dtype=np.uint16)
        try:
            for index in range(n_groups * group):
                out[index // group] += pages[index].asarray()
        except MovieReadError:
            raise
        except Exception as exc:
            raise MovieReadError(path, f"EER frame {index} cannot be decoded: {exc}") from exc
    return out


def movie_frame_count(path: Path | str) -> int:
    """Number of frames (EER: EER frames) in a movie, from its headers only.

    Raises
    ------
    MovieReadError
        As :func:`read_movie`.
    """
    path = Path(path)
    check_file(path, MovieReadError)
    if path.suffix.lower() in (".mrc", ".mrcs"):
        try:
            with mrcfile.mmap(path, permissive=False, mode="r") as mrc:
                return 1 if mrc.data.ndim == 2 else int(mrc.data.shape[0])
        except (ValueError, OSError, EOFError) as exc:
            raise MovieReadError(path, f"not a readable MRC file: {exc}") from exc
    with _open_tiff(path) as tif:
        _check_segments(path, tif)
        return sum(1 for p in tif.pages if p.compression != 1 or not tif.is_eer)
