"""The OpenAPI description documents every response of the JSON API (``web/models.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cryolive.config import Settings
from cryolive.web.app import create_app

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def described(schema: Schema, components: dict[str, Schema]) -> bool:
    """Whether a schema says what the response holds: objects with named properties (a
    model), arrays or maps of them. ``{}`` and bare objects are not (``dict[str, Any]``, or
    ``dict[str, int]``: additionalProperties only, no field named); nor are bare scalars."""
    if "$ref" in schema:
        return described(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if "anyOf" in schema or "oneOf" in schema:
        return all(described(s, components) for s in schema.get("anyOf", schema.get("oneOf")))
    if schema.get("type") == "array":
        return described(schema.get("items", {}), components)
    if schema.get("properties"):
        return True
    extra = schema.get("additionalProperties")  # a map: its values must be models
    return isinstance(extra, dict) and described(extra, components)


def api_responses(spec: dict[str, Any]) -> list[tuple[str, str, str, Schema]]:
    """(operation, status, media type, content) of every successful /api/ response."""
    found = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                name = f"{method.upper()} {path}"
                for media, content in response.get("content", {"(none)": {}}).items():
                    found.append((name, status, media, content))
    return found


def test_every_api_response_has_a_described_schema(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    responses = api_responses(spec)
    assert len({name for name, *_ in responses}) >= 20
    bare = []
    for name, status, media, content in responses:
        if media == "application/json":
            ok = described(content.get("schema", {}), components)
        elif media == "text/event-stream":  # each event's data: itemSchema
            ok = described(content.get("itemSchema", {}), components)
        else:  # a file: a binary string
            ok = content.get("schema") == {"type": "string", "format": "binary"}
        if not ok:
            bare.append(f"{name} {status} {media}: {content}")
    assert not bare, "\n".join(bare)


def test_the_live_update_event_carries_a_live_update(spec: dict[str, Any]) -> None:
    ok = spec["paths"]["/api/collections/{data_collection_id}/events"]["get"]["responses"]["200"]
    data = ok["content"]["text/event-stream"]["itemSchema"]["properties"]["data"]
    assert data["contentSchema"] == {"$ref": "#/components/schemas/LiveUpdate"}
    live = spec["components"]["schemas"]["LiveUpdate"]["properties"]
    assert set(live) == {"summary", "jobs", "classes"}


def test_the_described_check_refuses_bare_objects() -> None:
    assert not described({}, {})
    assert not described({"type": "object"}, {})
    assert not described({"type": "object", "additionalProperties": True}, {})
    assert not described({"type": "array", "items": {"type": "object"}}, {})
    assert not described({"type": "object", "additionalProperties": {"type": "integer"}}, {})
    assert described({"type": "object", "properties": {"a": {"type": "integer"}}}, {})


def test_the_answers_sent_without_a_model_match_their_documentation(
    clients: Any, world: Any
) -> None:
    """The series (cached bytes), the live update (a stream) and the drift file (a file) are
    not built through their models; what they send must still be what those models say."""
    from cryolive.web.models import Drift, LiveUpdate, Series  # here: the rest runs without

    client, _ = clients["member"]
    dc = world.data_collection_id
    series = client.get(f"/api/collections/{dc}/series").json()
    assert Series.model_validate(series).model_dump(mode="json") == series
    stream = client.get(f"/api/collections/{dc}/events", params={"limit": 1}).text
    update = json.loads(stream.strip().split("\n", 1)[1].removeprefix("data: "))
    assert set(LiveUpdate.model_validate(update).model_dump()) == set(update)
    drift = client.get(f"/api/movies/{world.movie_ids[0]}/files/drift").json()
    assert Drift.model_validate(drift).model_dump() == drift
