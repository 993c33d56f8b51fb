"""The FEI extended header of an MRC movie (Falcon, written by EPU): files built here with
mrcfile, the values planted at the byte offsets of Thermo Fisher's published layout, and read
back; broken and short headers give a clear MetadataReadError."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import mrcfile
import mrcfile.dtypes
import numpy as np
import pytest

from cryolive.io import MetadataReadError
from cryolive.io.fei_header import _FIELDS, read_fei_blocks, read_mrc_metadata
from cryolive.io.movies import read_movie

# field -> (offset, struct code, (bitmask, bit)) as the test plants them; bitmask n lies at
# MASKS[n] and is always little-endian
PLANT = {
    "timestamp": (12, "d", (1, 0)),
    "application": (52, "16s", (1, 3)),
    "application_version": (68, "16s", (1, 4)),
    "ht": (84, "d", (1, 5)),
    "dose": (92, "d", (1, 6)),
    "alpha_tilt": (100, "d", (1, 7)),
    "stage_x": (116, "d", (1, 9)),
    "stage_y": (124, "d", (1, 10)),
    "stage_z": (132, "d", (1, 11)),
    "pixel_size_x": (156, "d", (1, 14)),
    "defocus": (220, "d", (1, 22)),
    "applied_defocus": (236, "d", (1, 24)),
    "magnification": (289, "d", (1, 31)),
    "slit_inserted": (354, "?", (2, 7)),
    "slit_width": (355, "d", (2, 8)),
    "integration_time": (419, "d", (2, 16)),
    "binning_width": (427, "i", (2, 17)),
    "camera_name": (435, "16s", (2, 19)),
    "readout_left": (451, "i", (2, 20)),
    "readout_top": (455, "i", (2, 21)),
    "readout_right": (459, "i", (2, 22)),
    "readout_bottom": (463, "i", (2, 23)),
    "electron_counting": (472, "?", (2, 26)),
    "is_dose_fraction": (655, "?", (3, 27)),
    "fraction_number": (656, "i", (3, 28)),
    "acquisition_time_us": (796, "q", (4, 6)),
    "detector_name": (804, "16s", (4, 7)),
    "objective_aperture": (872, "16s", (4, 16)),
}
MASKS = {1: 8, 2: 297, 3: 490, 4: 748}

FALCON = {
    "timestamp": 45665.5,  # OLE date: 2025-01-08 12:00
    "application": b"EPU",
    "application_version": b"3.9.1",
    "ht": 300000.0,
    "dose": 4.0e21,  # e/m2 -> 40 e/A2
    "alpha_tilt": 0.5,
    "stage_x": -9.7e-5,
    "stage_y": 1.5e-4,
    "stage_z": 8.6e-5,
    "pixel_size_x": 0.73e-10,
    "defocus": -3.3e-6,
    "applied_defocus": -1.8e-6,
    "magnification": 165000.0,
    "slit_inserted": True,
    "slit_width": 10.0,
    "integration_time": 4.2,
    "binning_width": 1,
    "camera_name": b"BM-Falcon",
    "readout_left": 0,
    "readout_top": 0,
    "readout_right": 4096,
    "readout_bottom": 4096,
    "electron_counting": True,
    "is_dose_fraction": True,
    "acquisition_time_us": 1_736_337_600_250_000,  # 2025-01-08T12:00:00.25Z
    "detector_name": b"Falcon 4i",
    "objective_aperture": b"100",
}


def fei_block(values: dict[str, object], *, size: int = 888, order: str = "<") -> bytes:
    buf = bytearray(size)
    struct.pack_into(order + "ii", buf, 0, size, 2 if size >= 888 else 0)
    masks = dict.fromkeys(MASKS, 0)
    for name, value in values.items():
        offset, code, (mask, bit) = PLANT[name]
        if offset + struct.calcsize(code) > size:
            continue
        struct.pack_into(order + code, buf, offset, value)
        masks[mask] |= 1 << bit
    for mask, offset in MASKS.items():
        if offset + 4 <= size:
            struct.pack_into("<I", buf, offset, masks[mask])
    return bytes(buf)


def write_mrc(
    path: Path,
    blocks: list[bytes],
    *,
    exttyp: bytes = b"FEI2",
    frames: int | None = None,
    voxel_a: float = 0.0,
) -> Path:
    n = len(blocks) if frames is None else frames
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.arange(n * 16, dtype=np.int16).reshape(n, 4, 4))
        mrc.set_extended_header(np.frombuffer(b"".join(blocks), dtype="V1"))
        mrc.header.exttyp = exttyp
        if voxel_a:
            mrc.voxel_size = voxel_a
    return path


def test_offsets_agree_with_mrcfiles_transcription_of_the_spec() -> None:
    """Two independent transcriptions of Thermo Fisher's table must agree on every field read."""
    theirs = mrcfile.dtypes.get_ext_header_dtype(b"FEI2", "<")
    names = {
        "size": "Metadata size", "version": "Metadata version", "mask1": "Bitmask 1",
        "timestamp": "Timestamp", "application": "Application",
        "application_version": "Application version", "ht": "HT", "dose": "Dose",
        "alpha_tilt": "Alpha tilt", "stage_x": "X-Stage", "stage_y": "Y-Stage",
        "stage_z": "Z-Stage", "pixel_size_x": "Pixel size X", "defocus": "Defocus",
        "applied_defocus": "Applied defocus", "magnification": "Magnification",
        "mask2": "Bitmask 2", "slit_inserted": "Slit inserted", "slit_width": "Slit width",
        "integration_time": "Integration time", "binning_width": "Binning Width",
        "camera_name": "Camera name", "readout_left": "Readout area left",
        "readout_top": "Readout area top", "readout_right": "Readout area right",
        "readout_bottom": "Readout area bottom",
        "electron_counting": "Direct detector electron counting", "mask3": "Bitmask 3",
        "phase_plate": "Phase Plate", "is_dose_fraction": "Is dose fraction",
        "fraction_number": "Fraction number", "mask4": "Bitmask 4",
        "acquisition_time_us": "Acquisition time stamp",
        "detector_name": "Detector commercial name",
        "objective_aperture": "Objective aperture name",
    }  # fmt: skip
    for name, kind, offset, _ in _FIELDS:
        field_type, their_offset = theirs.fields[names[name]][:2]
        assert their_offset == offset, name
        assert field_type.itemsize == np.dtype(kind).itemsize, name
        if name in PLANT:
            assert PLANT[name][0] == offset, name


def test_falcon_movie_header_read_back(tmp_path: Path) -> None:
    blocks = [fei_block({**FALCON, "fraction_number": i}) for i in range(5)]
    path = write_mrc(tmp_path / "FoilHole_1_Data_2_3_20250108_120000_Fractions.mrc", blocks)
    meta = read_mrc_metadata(path)
    assert meta is not None and meta.source == "fei-mrc"
    assert meta.voltage_kv == 300.0
    assert meta.pixel_size_a == pytest.approx(0.73)
    assert meta.dose_e_per_a2 == pytest.approx(40.0)  # every block restates the exposure's
    assert meta.nominal_defocus_a == pytest.approx(18000)  # Applied defocus wins over Defocus
    assert meta.nominal_magnification == 165000
    assert meta.exposure_time_s == pytest.approx(4.2)
    assert meta.n_fractions == 5
    assert meta.stage_x_um == pytest.approx(-97.0) and meta.stage_z_um == pytest.approx(86.0)
    assert meta.stage_alpha_deg == pytest.approx(0.5)
    assert meta.energy_filter_slit_inserted is True and meta.energy_filter_slit_ev == 10.0
    assert (meta.readout_width_px, meta.readout_height_px, meta.binning) == (4096, 4096, 1)
    assert meta.detector_name == "Falcon 4i" and meta.electron_counting is True
    assert meta.objective_aperture_um == 100.0
    assert meta.software_version == "EPU 3.9.1"
    # FEI2's acquisition time stamp: microseconds since 1970, UTC
    assert meta.acquired_at == datetime(2025, 1, 8, 12, 0, 0, 250000, tzinfo=UTC)
    # the movie itself still reads, extended header and all
    assert read_movie(path).shape == (5, 4, 4)


def test_fei1_block_and_its_timestamp(tmp_path: Path) -> None:
    values = {k: v for k, v in FALCON.items() if PLANT[k][0] < 768}
    path = write_mrc(tmp_path / "m.mrc", [fei_block(values, size=768)] * 3, exttyp=b"FEI1")
    meta = read_mrc_metadata(path)
    assert meta is not None
    # no FEI2 fields: the camera name stands in for the commercial name, no aperture
    assert meta.detector_name == "BM-Falcon" and meta.objective_aperture_um is None
    # FEI1's Timestamp 45665.5 is an OLE date (days since 1899-12-30): no zone is recorded
    assert meta.acquired_at == datetime(2025, 1, 8, 12, 0)
    unix = fei_block({**values, "timestamp": 1_736_337_600.0}, size=768)
    meta = read_mrc_metadata(write_mrc(tmp_path / "u.mrc", [unix], exttyp=b"FEI1"))
    assert meta is not None and meta.acquired_at == datetime(2025, 1, 8, 12, tzinfo=UTC)


def test_unset_bits_are_absent_values(tmp_path: Path) -> None:
    """A field whose bitmask bit is clear holds no value, whatever its bytes say."""
    values = {k: v for k, v in FALCON.items() if k not in ("dose", "applied_defocus", "ht")}
    block = bytearray(fei_block(values))
    struct.pack_into("<d", block, 92, 9.9e20)  # a dose in the bytes, but its bit is clear
    (meta_blocks,) = [read_fei_blocks(write_mrc(tmp_path / "a.mrc", [bytes(block)]))]
    assert meta_blocks is not None and "dose" not in meta_blocks[0].values
    with pytest.raises(MetadataReadError, match="has no HT"):
        read_mrc_metadata(tmp_path / "a.mrc")
    ok = fei_block({**values, "ht": 200000.0})
    meta = read_mrc_metadata(write_mrc(tmp_path / "b.mrc", [ok]))
    assert meta is not None and meta.dose_e_per_a2 is None
    # the lens' Defocus (-3.3 µm here) is not the nominal defocus: without Applied defocus, none
    assert meta.nominal_defocus_a is None


def test_dose_per_fraction_is_summed(tmp_path: Path) -> None:
    blocks = [fei_block({**FALCON, "dose": d}) for d in (1.0e20, 1.1e20, 0.9e20)]
    meta = read_mrc_metadata(write_mrc(tmp_path / "m.mrc", blocks))
    assert meta is not None and meta.dose_e_per_a2 == pytest.approx(3.0)


def test_pixel_size_from_the_mrc_header_when_the_block_has_none(tmp_path: Path) -> None:
    values = {k: v for k, v in FALCON.items() if k != "pixel_size_x"}
    meta = read_mrc_metadata(write_mrc(tmp_path / "m.mrc", [fei_block(values)], voxel_a=0.94))
    assert meta is not None and meta.pixel_size_a == pytest.approx(0.94)


def test_big_endian_header(tmp_path: Path) -> None:
    path = tmp_path / "big.mrc"
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.zeros((2, 4, 4), dtype=">i2"))
        block = fei_block(FALCON, order=">")
        mrc.set_extended_header(np.frombuffer(block * 2, dtype="V1"))
        mrc.header.exttyp = b"FEI2"
    meta = read_mrc_metadata(path)
    assert meta is not None and meta.voltage_kv == 300 and meta.pixel_size_a == pytest.approx(0.73)


def test_no_fei_header_is_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((2, 4, 4), dtype=np.int16))
    assert read_mrc_metadata(path) is None
    path = write_mrc(tmp_path / "seri.mrc", [b"\0" * 64], exttyp=b"SERI")
    assert read_mrc_metadata(path) is None


def test_broken_and_short_headers(tmp_path: Path) -> None:
    good = write_mrc(tmp_path / "good.mrc", [fei_block(FALCON)] * 4)
    data = good.read_bytes()
    cases = {
        "header.mrc": (data[:500], "less than an MRC header"),
        "ext.mrc": (data[: 1024 + 1000], "truncated or malformed: an extended header"),
        "empty.mrc": (b"", "zero-byte"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(MetadataReadError, match=message) as caught:
            read_mrc_metadata(tmp_path / name)
        assert str(caught.value).startswith(str(tmp_path / name))
    # fewer blocks than frames: the header was cut or the writer lied
    short = write_mrc(tmp_path / "short.mrc", [fei_block(FALCON)] * 2, frames=4)
    with pytest.raises(MetadataReadError, match="2 metadata blocks for 4 frames"):
        read_mrc_metadata(short)
    # a block that does not say its own size
    bad = bytearray(fei_block(FALCON))
    struct.pack_into("<i", bad, 0, 12)
    with pytest.raises(MetadataReadError, match="says its size is 12 bytes"):
        read_mrc_metadata(write_mrc(tmp_path / "size.mrc", [bytes(bad)]))
    tiny = write_mrc(tmp_path / "tiny.mrc", [b"\1" * 100], exttyp=b"FEI1")
    with pytest.raises(MetadataReadError, match="less than one block"):
        read_mrc_metadata(tiny)
    nan = fei_block({**FALCON, "ht": float("nan")})
    with pytest.raises(MetadataReadError, match="field ht is not finite"):
        read_mrc_metadata(write_mrc(tmp_path / "nan.mrc", [nan]))
    negative = fei_block({**FALCON, "integration_time": -1.0})
    with pytest.raises(MetadataReadError, match="implausible"):
        read_mrc_metadata(write_mrc(tmp_path / "neg.mrc", [negative]))


def test_a_hostile_extended_header_size_is_refused_before_reading(tmp_path: Path) -> None:
    path = write_mrc(tmp_path / "huge.mrc", [fei_block(FALCON)])
    data = bytearray(path.read_bytes())
    struct.pack_into("<i", data, 92, 2**31 - 1)
    path.write_bytes(bytes(data))
    with pytest.raises(MetadataReadError, match="extended header of 2147483647 bytes"):
        read_mrc_metadata(path)


def test_timestamps_out_of_range_are_not_invented(tmp_path: Path) -> None:
    values = {**FALCON, "timestamp": 3.0, "acquisition_time_us": 5}
    meta = read_mrc_metadata(write_mrc(tmp_path / "m.mrc", [fei_block(values)]))
    assert meta is not None and meta.acquired_at is None
