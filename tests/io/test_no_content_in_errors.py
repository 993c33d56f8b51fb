"""Failure text never echoes a foreign file's bytes: a password file read as a movie, gain,
EPU XML or mdoc gives a message that says what is wrong, without the file's content."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cryolive.io import ReadError
from cryolive.io._errors import without_content
from cryolive.io.epu import read_epu_xml
from cryolive.io.fei_header import read_mrc_metadata
from cryolive.io.gain import read_gain
from cryolive.io.mdoc import read_mdoc
from cryolive.io.movies import read_movie
from cryolive.simulate._layout import epu_image_xml, serialem_mdoc

from .test_metadata import RECORD

SECRET = "s3cr3tpw"
PASSWD = f"root:{SECRET}:0:0:root:/root:/bin/bash\n"


def _cases(tmp: Path) -> list[tuple[Callable[..., Any], Path]]:
    def put(name: str, data: bytes | str) -> Path:
        path = tmp / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    xml = epu_image_xml(RECORD)
    mdoc = serialem_mdoc(RECORD, image_file="m.tif")
    return [
        (read_movie, put("a.tiff", PASSWD)),
        (read_movie, put("b.tif", SECRET.encode() + b"\x00" * 8)),
        (read_movie, put("c.mrc", PASSWD * 40)),
        (read_gain, put("g.mrc", PASSWD * 40)),
        (read_mrc_metadata, put("d.mrc", PASSWD * 40)),
        (read_mrc_metadata, put("e.mrc", PASSWD[:200])),
        (read_gain, put("g.tiff", PASSWD)),
        (read_mdoc, put("a.mdoc", PASSWD)),
        (read_mdoc, put("b.mdoc", mdoc.replace("Voltage = 200", f"Voltage = {SECRET}"))),
        (read_mdoc, put("c.mdoc", mdoc.replace("StagePosition = ", f"StagePosition = {SECRET} "))),
        (read_mdoc, put("d.mdoc", mdoc.replace("DateTime = ", f"DateTime = {SECRET} "))),
        (read_epu_xml, put("a.xml", f"<{SECRET}><x>1</x></{SECRET}>")),
        (read_epu_xml, put("b.xml", xml.replace("<ExposureTime>2.5<", f"<ExposureTime>{SECRET}<"))),
    ]


def test_read_errors_do_not_echo_the_file(tmp_path: Path) -> None:
    cases = _cases(tmp_path)
    for reader, path in cases:
        with pytest.raises(ReadError) as caught:
            reader(path)
        message = str(caught.value)
        assert SECRET not in message and "root:" not in message, (path.name, message)
        assert message.startswith(f"{path}: ") and len(caught.value.reason) > 5


def test_without_content_drops_bytes_and_control_characters() -> None:
    assert without_content("not a TIFF file: header=b'root'") == (
        "not a TIFF file: header=(content not shown)"
    )
    assert without_content('got b"a\\"b" here') == "got (content not shown) here"
    assert without_content("the job's 'x' b'") == "the job's 'x' b'"  # no literal: kept
    assert without_content("two\nlines\x1b[31m") == "two lines [31m"
    assert len(without_content("x" * 10_000)) == 300


def test_a_file_name_with_a_newline_stays_one_line(tmp_path: Path) -> None:
    path = tmp_path / "movie\nERROR forged.tiff"
    path.write_bytes(PASSWD.encode())
    with pytest.raises(ReadError) as caught:
        read_movie(path)
    assert "\n" not in str(caught.value) and "movie?ERROR forged.tiff" in str(caught.value)
    assert caught.value.path == path  # the real path is kept for the code
