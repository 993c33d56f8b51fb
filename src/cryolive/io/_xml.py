"""Safe reading of the XML files Thermo Fisher's EPU writes (.NET data-contract serialisation).

Elements are found by local name, so the many namespace prefixes of the serialiser do not
matter. A document with a DTD or entity declarations is refused before anything is expanded:
EPU writes none, and they are how XML bombs and external entities work.
"""

from __future__ import annotations

import contextlib
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from xml.parsers import expat

from cryolive.io._errors import MetadataReadError, check_file

__all__ = ["child", "children", "local", "number", "parse_xml", "text", "when"]


def local(tag: str) -> str:
    """An element's tag without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def child(node: ET.Element | None, *names: str) -> ET.Element | None:
    """The element reached from ``node`` through direct children with these local names."""
    for name in names:
        if node is None:
            return None
        node = next((c for c in node if local(c.tag) == name), None)
    return node


def children(node: ET.Element | None, name_prefix: str) -> Iterator[ET.Element]:
    """Direct children whose local name starts with ``name_prefix`` (the serialiser appends a
    hash to generic type names: ``KeyValuePairOfintNodeXml30oatNZW``)."""
    if node is not None:
        yield from (c for c in node if local(c.tag).startswith(name_prefix))


def text(node: ET.Element | None) -> str | None:
    """The stripped text of ``node``; None when it is absent, ``i:nil`` or empty."""
    if node is None or node.text is None:
        return None
    return node.text.strip() or None


def number(path: Path, node: ET.Element | None, what: str) -> float | None:
    """The finite number in ``node`` (None when absent); MetadataReadError when not a number."""
    value = text(node)
    if value is None:
        return None
    try:
        parsed = float(value)
    except ValueError as exc:
        raise MetadataReadError(path, f"field {what} is not a number") from exc
    if not math.isfinite(parsed):
        raise MetadataReadError(path, f"field {what} is not finite")
    return parsed


def when(path: Path, node: ET.Element | None, what: str) -> datetime | None:
    """The ISO 8601 time in ``node`` (.NET's seven fractional digits included), with its
    zone when the file gives one."""
    value = text(node)
    if value is None:
        return None
    fraction = re.fullmatch(r"(.*T[0-9:]+\.)(\d+)(.*)", value)
    if fraction is not None:  # at most 6 fractional digits, whatever the Python version
        value = fraction[1] + fraction[2][:6].ljust(6, "0") + fraction[3]
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise MetadataReadError(path, f"field {what} is not a date") from exc


def _refuse_declarations(path: Path, data: bytes) -> None:
    def refuse(*_: object) -> None:
        raise MetadataReadError(path, "holds a DTD or entity declarations; EPU writes none")

    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    with contextlib.suppress(expat.ExpatError):  # not well-formed: the real parse says so
        scanner.Parse(data, True)


def parse_xml(path: Path, *, root_name: str, max_bytes: int) -> ET.Element:
    """The root element of the EPU file ``path``.

    Raises
    ------
    MetadataReadError
        Missing, not a file, larger than ``max_bytes``, with a DTD, not well-formed (cut short
        while being written?), or whose root element is not ``root_name``.
    """
    check_file(path, MetadataReadError)
    if path.stat().st_size > max_bytes:
        raise MetadataReadError(path, f"larger than {max_bytes} bytes: not an EPU {root_name}")
    data = path.read_bytes()
    if not data.strip():
        raise MetadataReadError(path, "empty file (still being written?)")
    _refuse_declarations(path, data)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise MetadataReadError(path, f"not well-formed XML ({exc}); cut short?") from exc
    if local(root.tag) != root_name:
        raise MetadataReadError(path, f"the root element is not {root_name}")
    return root
