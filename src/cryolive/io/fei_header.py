"""Read the FEI extended header of an MRC movie (Falcon ``*_Fractions.mrc`` written by EPU).

Thermo Fisher's MRC files set ``exttyp`` to ``FEI1`` (metadata version 0, 768-byte blocks) or
``FEI2`` (version 2, 888 bytes) and put one metadata block per section (frame) between the
1024-byte header and the data. The layout is Thermo Fisher's public description, "MRC2014 file
format used by Thermo Scientific" (EPU user manual appendix; the Thermo Scientific software
center page ``tem-apps/MRC-2014-Specifications``): packed fields, each group of up to 32
fields preceded by a little-endian ``uint32`` bitmask whose bit *n* says whether the *n*-th
field after it holds a value; the other fields are in the byte order of the MRC header. Units
are SI: volts, metres, electrons per m², degrees, seconds.

Only the fields cryolive records are declared below, at their byte offsets in the block.
"""

from __future__ import annotations

import math
import struct
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mrcfile
import numpy as np

from cryolive.io._errors import MetadataReadError, check_file, one_line
from cryolive.io._metadata import AcquisitionMetadata

__all__ = ["FEI_TYPES", "FeiBlock", "read_fei_blocks", "read_mrc_metadata"]

FEI_TYPES = {b"FEI1": 768, b"FEI2": 888}  # exttyp -> the smallest block of that version
MAX_EXTENDED_BYTES = 64 * 2**20  # 888 bytes a frame: room for 75,000 frames

# (name, numpy type without byte order, byte offset, (bitmask, bit) or None)
_FIELDS: tuple[tuple[str, str, int, tuple[int, int] | None], ...] = (
    ("size", "i4", 0, None),
    ("version", "i4", 4, None),
    ("mask1", "u4", 8, None),
    ("timestamp", "f8", 12, (1, 0)),
    ("application", "S16", 52, (1, 3)),
    ("application_version", "S16", 68, (1, 4)),
    ("ht", "f8", 84, (1, 5)),
    ("dose", "f8", 92, (1, 6)),
    ("alpha_tilt", "f8", 100, (1, 7)),
    ("stage_x", "f8", 116, (1, 9)),
    ("stage_y", "f8", 124, (1, 10)),
    ("stage_z", "f8", 132, (1, 11)),
    ("pixel_size_x", "f8", 156, (1, 14)),
    ("defocus", "f8", 220, (1, 22)),
    ("applied_defocus", "f8", 236, (1, 24)),
    ("magnification", "f8", 289, (1, 31)),
    ("mask2", "u4", 297, None),
    ("slit_inserted", "?", 354, (2, 7)),
    ("slit_width", "f8", 355, (2, 8)),
    ("integration_time", "f8", 419, (2, 16)),
    ("binning_width", "i4", 427, (2, 17)),
    ("camera_name", "S16", 435, (2, 19)),
    ("readout_left", "i4", 451, (2, 20)),
    ("readout_top", "i4", 455, (2, 21)),
    ("readout_right", "i4", 459, (2, 22)),
    ("readout_bottom", "i4", 463, (2, 23)),
    ("electron_counting", "?", 472, (2, 26)),
    ("mask3", "u4", 490, None),
    ("phase_plate", "?", 518, (3, 6)),
    ("is_dose_fraction", "?", 655, (3, 27)),
    ("fraction_number", "i4", 656, (3, 28)),
    ("mask4", "u4", 748, None),
    # metadata version 2 (FEI2) only
    ("acquisition_time_us", "i8", 796, (4, 6)),
    ("detector_name", "S16", 804, (4, 7)),
    ("objective_aperture", "S16", 872, (4, 16)),
)


@dataclass(frozen=True)
class FeiBlock:
    """The fields of one frame's metadata block that hold a value (bitmask set), by the names
    of ``_FIELDS``, in the file's SI units; absent ones are missing from ``values``."""

    values: dict[str, float | int | bool | str]

    def get(self, name: str) -> float | None:
        value = self.values.get(name)
        return None if value is None or isinstance(value, str) else float(value)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) and value else None


def _dtype(block_size: int, order: str) -> np.dtype:
    fields = [f for f in _FIELDS if f[2] + np.dtype(f[1]).itemsize <= block_size]
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            # bitmasks are little-endian whatever the header's byte order
            "formats": [("<" if f[0].startswith("mask") else order) + f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": block_size,
        }
    )


def _fei_type(path: Path) -> bytes | None:
    """The ``exttyp`` (``FEI1``/``FEI2``) from the first 1024 bytes, with the extended header's
    size checked against the file's before mrcfile allocates it; None when the file has no FEI
    extended header."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(1024)
    if len(head) < 1024:
        raise MetadataReadError(path, f"truncated: {len(head)} bytes, less than an MRC header")
    if head[208:212] != b"MAP ":
        raise MetadataReadError(path, "not an MRC file (no 'MAP ' stamp at byte 208)")
    order = ">" if head[212] == 0x11 else "<"
    (nsymbt,) = struct.unpack_from(order + "i", head, 92)
    exttyp = head[104:108]
    if exttyp not in FEI_TYPES or nsymbt == 0:
        return None
    if nsymbt < 0 or 1024 + nsymbt > size:
        raise MetadataReadError(
            path, f"truncated or malformed: an extended header of {nsymbt} bytes in {size}"
        )
    if nsymbt > MAX_EXTENDED_BYTES:
        raise MetadataReadError(path, f"an extended header of {nsymbt} bytes is implausible")
    return exttyp


def read_fei_blocks(path: Path | str) -> list[FeiBlock] | None:
    """Every frame's FEI metadata block, or None when the MRC has no FEI extended header.

    Raises
    ------
    MetadataReadError
        Not a readable MRC, or an FEI header that is truncated, too short for its frames, or
        whose blocks do not say their own size.
    """
    path = Path(path)
    check_file(path, MetadataReadError)
    exttyp = _fei_type(path)
    if exttyp is None:
        return None
    try:
        with mrcfile.open(path, header_only=True, permissive=False) as mrc:
            raw = mrc.extended_header.tobytes()
            nz = int(mrc.header.nz)
            byte_order = mrc.header.mode.dtype.byteorder
    except (ValueError, OSError, EOFError) as exc:
        raise MetadataReadError(path, f"not a readable MRC file: {one_line(exc)}") from exc
    order = {"=": "<" if sys.byteorder == "little" else ">", "|": "<"}.get(byte_order, byte_order)
    minimum = FEI_TYPES[exttyp]
    if len(raw) < minimum:
        raise MetadataReadError(
            path, f"{exttyp.decode()} extended header of {len(raw)} bytes, less than one block"
        )
    (block,) = struct.unpack_from(order + "i", raw, 0)
    if block < minimum or block > len(raw):
        raise MetadataReadError(
            path, f"{exttyp.decode()} metadata block says its size is {block} bytes"
        )
    n_blocks = len(raw) // block
    if n_blocks < max(nz, 1):
        raise MetadataReadError(
            path, f"truncated FEI extended header: {n_blocks} metadata blocks for {nz} frames"
        )
    dtype = _dtype(block, order)
    records = np.frombuffer(raw, dtype=dtype, count=max(nz, 1))
    return [_block(path, record) for record in records]


def _block(path: Path, record: np.void) -> FeiBlock:
    names = record.dtype.names or ()
    masks = {n: int(record[f"mask{n}"]) for n in (1, 2, 3, 4) if f"mask{n}" in names}
    values: dict[str, float | int | bool | str] = {}
    for name, kind, _, bit in _FIELDS:
        if bit is None or name not in names:
            continue
        if not masks.get(bit[0], 0) >> bit[1] & 1:
            continue
        value = record[name]
        if kind.startswith("S"):
            values[name] = bytes(value).split(b"\0", 1)[0].decode("latin-1").strip()
        elif kind == "?":
            values[name] = bool(value)
        elif kind.startswith("i"):
            values[name] = int(value)
        else:
            number = float(value)
            if not math.isfinite(number):
                raise MetadataReadError(path, f"FEI extended header field {name} is not finite")
            values[name] = number
    return FeiBlock(values)


def read_mrc_metadata(path: Path | str) -> AcquisitionMetadata | None:
    """The acquisition metadata an MRC movie's FEI extended header carries.

    Values come from the first frame's block (the acquisition's settings, which EPU restates
    in each block); the pixel size falls back to the MRC header's voxel size. The dose is the
    first block's when every block states the same dose (the exposure's), and their sum when
    they differ (a dose per fraction). Where EPU wrote its ``.xml`` beside the movie, that file
    is the better source: this reader is for movies without one.

    Returns
    -------
    AcquisitionMetadata or None
        ``source="fei-mrc"``; None when the file has no FEI1/FEI2 extended header.

    Raises
    ------
    MetadataReadError
        A broken or short header (see :func:`read_fei_blocks`), or no HT, pixel size or
        integration time in it, or an implausible value.
    """
    path = Path(path)
    blocks = read_fei_blocks(path)
    if blocks is None:
        return None
    first = blocks[0]
    pixel_m = first.get("pixel_size_x")
    if pixel_m is None or pixel_m <= 0:
        with mrcfile.open(path, header_only=True, permissive=True) as mrc:
            voxel_a = float(mrc.voxel_size.x)
        pixel_m = voxel_a * 1e-10 if voxel_a > 0 else None
    for name, value in (("HT", first.get("ht")), ("Pixel size", pixel_m)):
        if value is None:
            raise MetadataReadError(path, f"the FEI extended header has no {name}")
    exposure = first.get("integration_time")
    if exposure is None:
        raise MetadataReadError(path, "the FEI extended header has no Integration time")
    doses = [b.get("dose") for b in blocks]
    dose_m2 = None
    if all(d is not None for d in doses):
        known = [d for d in doses if d is not None]
        dose_m2 = known[0] if len(set(known)) == 1 else sum(known)
    # "Applied defocus" is the defocus asked for (EPU's XML AppliedDefocus); "Defocus" is the
    # objective lens reading (the XML's optics/Defocus, +0.48 µm on the example where
    # -2.7 µm was applied), so it is no nominal defocus and is not used for one
    defocus_m = first.get("applied_defocus")
    left, right = first.get("readout_left"), first.get("readout_right")
    top, bottom = first.get("readout_top"), first.get("readout_bottom")
    magnification = first.get("magnification")
    binning = first.get("binning_width")
    slit_in = first.values.get("slit_inserted")
    software = " ".join(
        t for t in (first.text("application"), first.text("application_version")) if t
    )
    aperture = first.text("objective_aperture")
    try:
        return AcquisitionMetadata(
            source="fei-mrc",
            pixel_size_a=(pixel_m or 0) * 1e10,
            voltage_kv=(first.get("ht") or 0) / 1000.0,
            exposure_time_s=exposure,
            n_fractions=len(blocks),
            dose_e_per_a2=None if dose_m2 is None else dose_m2 * 1e-20,
            nominal_defocus_a=None if defocus_m is None else -defocus_m * 1e10,
            nominal_magnification=None if magnification is None else round(magnification),
            binning=1 if binning is None else int(binning),
            readout_width_px=None if left is None or right is None else int(right - left),
            readout_height_px=None if top is None or bottom is None else int(bottom - top),
            readout_offset_x_px=None if left is None else int(left),
            readout_offset_y_px=None if top is None else int(top),
            stage_x_um=_scaled(first.get("stage_x"), 1e6),
            stage_y_um=_scaled(first.get("stage_y"), 1e6),
            stage_z_um=_scaled(first.get("stage_z"), 1e6),
            stage_alpha_deg=first.get("alpha_tilt"),
            energy_filter_slit_inserted=None if slit_in is None else bool(slit_in),
            energy_filter_slit_ev=first.get("slit_width") if slit_in else None,
            phase_plate_used=bool(first.values.get("phase_plate", False)),
            detector_name=first.text("detector_name") or first.text("camera_name"),
            electron_counting=_flag(first.values.get("electron_counting")),
            objective_aperture_um=_size(aperture),
            software_version=software or None,
            acquired_at=_when(first),
        )
    except ValueError as exc:
        raise MetadataReadError(path, f"implausible value: {one_line(exc)}") from exc


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _flag(value: object) -> bool | None:
    return None if value is None else bool(value)


def _size(name: str | None) -> float | None:
    try:
        size = float(name) if name else None
    except ValueError:
        return None
    return size if size is not None and math.isfinite(size) and size > 0 else None


_OLE_EPOCH = datetime(1899, 12, 30)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _when(block: FeiBlock) -> datetime | None:
    """FEI2's acquisition time stamp (microseconds since 1970, UTC) when present; else FEI1's
    Timestamp, a double whose scale says its kind: days since 1899-12-30 (an OLE automation
    date, local time without a zone: naive) or seconds since 1970 (UTC)."""
    micro = block.values.get("acquisition_time_us")
    if isinstance(micro, int) and 10**14 < micro < 10**17:  # 1973 .. 5138
        return _UNIX_EPOCH + timedelta(microseconds=micro)
    stamp = block.get("timestamp")
    if stamp is None:
        return None
    if 10_000 < stamp < 200_000:  # 1927 .. 2447 as OLE days
        return _OLE_EPOCH + timedelta(days=stamp)
    if 10**8 < stamp < 10**11:  # 1973 .. 5138 as Unix seconds
        return _UNIX_EPOCH + timedelta(seconds=stamp)
    return None
