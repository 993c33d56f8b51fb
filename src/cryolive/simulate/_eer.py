"""Electron Event Representation (EER, Thermo Fisher Falcon 4/4i): encoder and writer.

Facts of the format used here (as documented with Thermo Fisher's EerReaderLib and read by
tifffile + imagecodecs): an EER file is a little-endian BigTIFF with one IFD per detector
frame; each frame is one strip compressed with scheme 65001 ("7-bit", 2 + 2 sub-pixel bits).
A strip is a bit stream read least-significant bit first: a 7-bit run length counts the empty
pixels before the next electron; the value 127 means "127 empty pixels, no electron, read on";
any other run is followed by 2 bits of horizontal and 2 bits of vertical sub-pixel position
(stored XOR 2), and the electron's pixel is consumed (the next run starts after it). A run
that reaches the frame's last pixel ends the stream, and a strip has an even number of bytes
(the decoder refuses odd ones) and a code is only read if a full 11 bits follow its start;
so every strip ends with runs to the end of the frame and zero padding.
The acquisition metadata is an XML document ``<metadata>…</metadata>`` in tag 65001
(type UNDEFINED) of the first IFD.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

RUN_BITS = 7
RUN_ESCAPE = (1 << RUN_BITS) - 1
SUB_BITS = 2
COMPRESSION_EER_7BIT = 65001
_TAG_METADATA = 65001


def encode_eer_frame(
    positions: np.ndarray, sub_x: np.ndarray, sub_y: np.ndarray, *, n_pixels: int
) -> bytes:
    """Encode one detector frame's electrons.

    Parameters
    ----------
    positions
        (e,) int64 flat pixel indices (row-major, y * width + x), strictly increasing.
    sub_x, sub_y
        (e,) int sub-pixel positions 0-3 (quarter pixels from the pixel's left/top edge).
    n_pixels
        Pixels in the frame (height * width).

    Returns
    -------
    bytes
        The compressed strip (even length).
    """
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size and (positions[0] < 0 or positions[-1] >= n_pixels):
        raise ValueError(f"positions: must lie in [0, {n_pixels})")
    gaps = np.diff(positions, prepend=-1) - 1
    if np.any(gaps < 0):
        raise ValueError("positions: must be strictly increasing")
    tail = n_pixels - (int(positions[-1]) + 1 if positions.size else 0)
    n_escape = np.append(gaps // RUN_ESCAPE, tail // RUN_ESCAPE)
    per_code = n_escape + 1
    total = int(per_code.sum())
    slot = np.cumsum(per_code) - 1
    values = np.full(total, RUN_ESCAPE, dtype=np.int64)
    widths = np.full(total, RUN_BITS, dtype=np.int64)
    sub = (np.asarray(sub_x, dtype=np.int64) ^ 2) | ((np.asarray(sub_y, dtype=np.int64) ^ 2) << 2)
    values[slot[:-1]] = (gaps - n_escape[:-1] * RUN_ESCAPE) | (sub << RUN_BITS)
    widths[slot[:-1]] = RUN_BITS + 2 * SUB_BITS
    values[slot[-1]] = tail % RUN_ESCAPE
    if tail % RUN_ESCAPE == 0:  # the last escape already reached the end
        values, widths = values[:-1], widths[:-1]
    if values.size == 0:
        return b"\0\0"
    offsets = np.cumsum(widths) - widths
    # The decoder reads a code only if a whole 11-bit code would still fit after its start,
    # so zero padding of at least that much follows the last code (a zero run there lands on
    # the end of the frame and stops the decoder).
    n_bytes = int((offsets[-1] + widths[-1] + RUN_BITS + 2 * SUB_BITS + 7) // 8)
    n_bytes += n_bytes % 2
    # A code (at most 11 bits, starting anywhere in a byte) touches at most 3 bytes, and code
    # i + 4 starts at least 28 bits after code i: codes with the same index modulo 4 never
    # share a byte, so each such group can be OR-ed in with plain fancy indexing.
    shifted = (values << (offsets & 7)).astype(np.uint32)
    byte = offsets >> 3
    out = np.zeros(n_bytes + 3, dtype=np.uint8)
    for group in range(4):
        where = byte[group::4]
        part = shifted[group::4]
        for lane in range(3):
            out[where + lane] |= ((part >> (8 * lane)) & 255).astype(np.uint8)
    return out[:n_bytes].tobytes()


def spread_counts(
    counts: np.ndarray, n_frames: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Spread a fraction's counts over ``n_frames`` detector frames, at most one per frame.

    A pixel with k counts gets k distinct frames: a uniform first frame and the k - 1 after it
    (cyclically). Events are ordered by a stable (radix) sort on the 16-bit frame number.

    Parameters
    ----------
    counts
        (y, x) unsigned counts of the whole fraction (values above ``n_frames`` are clipped).

    Returns
    -------
    frame : (e,) uint16
        Detector frame (0 … n_frames - 1) of each electron, ascending.
    position : (e,) int64
        Flat pixel index of each electron; ascending within each frame.
    """
    if not 1 <= n_frames < 2**16:
        raise ValueError(f"n_frames: must be in [1, 65535], got {n_frames}")
    flat = counts.ravel()
    pixels = np.flatnonzero(flat)
    k = np.minimum(flat[pixels], n_frames)
    position = np.repeat(pixels, k)
    frame = np.repeat(rng.integers(0, n_frames, size=pixels.size, dtype=np.uint16), k)
    multi = np.flatnonzero(k > 1)
    if multi.size:
        first_event = (np.cumsum(k, dtype=np.int64) - k)[multi]
        k_multi = k[multi]
        for nth in range(1, int(k_multi.max())):
            more = k_multi > nth
            at = first_event[more] + nth
            frame[at] = (frame[at].astype(np.int64) + nth) % n_frames
    order = np.argsort(frame, kind="stable")
    return frame[order], position[order]


class EerWriter:
    """Write an EER file frame by frame; the file is a valid EER after every frame."""

    def __init__(self, path: Path, shape_px: tuple[int, int], *, metadata_xml: str) -> None:
        self.path = path
        self.height, self.width = shape_px
        self._fh = path.open("wb")
        self._fh.write(b"II" + struct.pack("<HHHQ", 43, 8, 0, 0))
        self._next_pointer_at = 8
        blob = metadata_xml.encode()
        self._metadata = (self._fh.tell(), len(blob))
        self._fh.write(blob)
        self.n_frames = 0

    def write_frame(self, strip: bytes) -> None:
        """Append one detector frame's compressed strip and its IFD."""
        fh = self._fh
        fh.seek(0, 2)
        strip_at = fh.tell()
        fh.write(strip)
        if fh.tell() % 2:
            fh.write(b"\0")
        ifd_at = fh.tell()
        entries = [
            (256, 4, 1, self.width),
            (257, 4, 1, self.height),
            (258, 3, 1, 1),
            (259, 3, 1, COMPRESSION_EER_7BIT),
            (262, 3, 1, 1),
            (273, 16, 1, strip_at),
            (277, 3, 1, 1),
            (278, 4, 1, self.height),
            (279, 16, 1, len(strip)),
        ]
        if self.n_frames == 0:
            entries.append((_TAG_METADATA, 7, self._metadata[1], self._metadata[0]))
        fh.write(struct.pack("<Q", len(entries)))
        for tag, kind, count, value in entries:
            fh.write(struct.pack("<HHQQ", tag, kind, count, value))
        next_at = fh.tell()
        fh.write(struct.pack("<Q", 0))
        fh.seek(self._next_pointer_at)
        fh.write(struct.pack("<Q", ifd_at))
        self._next_pointer_at = next_at
        fh.flush()
        self.n_frames += 1

    def close(self) -> None:
        self._fh.close()


def write_eer_fractions(
    writer: EerWriter,
    fractions: Iterable[np.ndarray],
    *,
    frames_per_fraction: int,
    rng: np.random.Generator,
    after_fraction: Callable[[int], None] | None = None,
) -> None:
    """Write counted fractions as EER detector frames (``frames_per_fraction`` each)."""
    n_pixels = writer.height * writer.width
    for index, counts in enumerate(fractions):
        frame, position = spread_counts(counts, frames_per_fraction, rng)
        bounds = np.searchsorted(frame, np.arange(frames_per_fraction + 1))
        sub = rng.integers(0, 4, size=(2, position.size), dtype=np.uint8)
        for f in range(frames_per_fraction):
            lo, hi = bounds[f], bounds[f + 1]
            strip = encode_eer_frame(
                position[lo:hi], sub[0, lo:hi], sub[1, lo:hi], n_pixels=n_pixels
            )
            writer.write_frame(strip)
        if after_fraction is not None:
            after_fraction(index)
