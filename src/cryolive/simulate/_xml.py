"""A small builder for the XML the .NET data-contract serializer writes (EPU's files).

Element names are written with the prefixes EPU uses (``a:Key``, ``b:key``, ``c:x``) and the
``xmlns:…`` declarations on the element where EPU puts them, so that a reader which resolves
namespaces and a reader which matches prefixed names (``xmltodict`` without namespace
processing, as some facility tools use) both read the simulated files as they read real ones.
ElementTree keeps such names verbatim when they are given as plain strings.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

NS_SHARED = "http://schemas.datacontract.org/2004/07/Fei.SharedObjects"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_XS = "http://www.w3.org/2001/XMLSchema"
NS_ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
NS_SERIAL = "http://schemas.microsoft.com/2003/10/Serialization/"
NS_GENERIC = "http://schemas.datacontract.org/2004/07/System.Collections.Generic"
NS_DRAWING = "http://schemas.datacontract.org/2004/07/System.Drawing"
NS_TYPES = "http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types"
NS_COMMON = "http://schemas.datacontract.org/2004/07/Fei.Common.Types"
NS_FEI_TYPES = "http://schemas.datacontract.org/2004/07/Fei.Types"
NS_MEDIA = "http://schemas.datacontract.org/2004/07/System.Windows.Media"
NS_EPU = "http://schemas.datacontract.org/2004/07/Applications.Epu.Persistence"
NS_ATLAS = (
    "http://schemas.datacontract.org/2004/07/Applications.SciencesAppsShared.GridAtlas.Persistence"
)
NS_ATLAS_MODEL = (
    "http://schemas.datacontract.org/2004/07/Applications.SciencesAppsShared.GridAtlas.Datamodel"
)
NS_SYSTEM = "http://schemas.datacontract.org/2004/07/System"


def sub(parent: ET.Element, tag: str, text: object = None, **attrs: str) -> ET.Element:
    """A child ``tag`` (prefixed name as written) with ``text`` and attributes.

    Attribute names use ``__`` for ``:`` (``xmlns__a`` is ``xmlns:a``, ``i__nil`` is
    ``i:nil``), so declarations can be written as keywords.
    """
    node = ET.SubElement(parent, tag, {k.replace("__", ":"): v for k, v in attrs.items()})
    if text is not None:
        node.text = text if isinstance(text, str) else number(text)
    return node


def nil(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    """An element the serializer writes for a null reference (``i:nil="true"``)."""
    return sub(parent, tag, i__nil="true", **attrs)


def number(value: object) -> str:
    """A number as .NET writes it: integers without a point, floats round-trip exact."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def dotnet_time(when: datetime) -> str:
    """``2025-01-08T15:49:18.1158288+00:00``: .NET's seven fraction digits and the zone."""
    if when.tzinfo is None:
        raise ValueError(f"when: EPU writes its times with a zone; got naive {when.isoformat()}")
    text = when.isoformat(timespec="microseconds")
    stamp, zone = text[:26], text[26:]
    return f"{stamp}0{zone}"


def size(parent: ET.Element, tag: str, width: float, height: float, prefix: str = "a") -> None:
    """A ``System.Drawing`` size (``height`` then ``width``, alphabetical as .NET writes)."""
    node = sub(parent, tag, **{f"xmlns__{prefix}": NS_DRAWING})
    sub(node, f"{prefix}:height", height)
    sub(node, f"{prefix}:width", width)


def point(parent: ET.Element, tag: str, x: float, y: float, prefix: str = "a") -> None:
    node = sub(parent, tag, **{f"xmlns__{prefix}": NS_DRAWING})
    sub(node, f"{prefix}:x", x)
    sub(node, f"{prefix}:y", y)


def stage_position(
    parent: ET.Element, tag: str, xyz_m: tuple[float, ...], prefix: str = "c"
) -> None:
    """A stage position (metres, alpha/beta radians) in ``Fei.SharedObjects``."""
    attrs = {} if prefix == "" else {f"xmlns__{prefix}": NS_SHARED}
    node = sub(parent, tag, **attrs)
    p = f"{prefix}:" if prefix else ""
    sub(node, f"{p}A", 0)
    sub(node, f"{p}B", 0)
    for name, value in zip("XYZ", xyz_m, strict=True):
        sub(node, f"{p}{name}", float(value))


def to_text(root: ET.Element, *, declaration: bool) -> str:
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0"?>\n' if declaration else "") + body + "\n"
