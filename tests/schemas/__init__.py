"""OpenAI's published schemas (an extract of openai-openapi's spec, see openai.json's ``source``
and ``commit``; made by extract_openai.py) as jsonschema validators."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC = json.loads((Path(__file__).parent / "openai.json").read_text())


@cache
def validator(name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}
    return Draft202012Validator(schema)


def problems(name: str, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"[:300]
            for e in validator(name).iter_errors(instance)]


def check(name: str, instance: Any) -> None:
    found = problems(name, instance)
    assert not found, f"not a valid {name}: {found} in {json.dumps(instance)[:2000]}"


@cache
def _event_schemas() -> dict[str, str]:
    """Responses stream event type -> its schema's name."""
    names = {}
    for option in SPEC["components"]["schemas"]["ResponseStreamEvent"]["anyOf"]:
        name = option["$ref"].rsplit("/", 1)[1]
        kind = SPEC["components"]["schemas"][name]["properties"]["type"]["enum"][0]
        names[kind] = name
    return names


def check_response_event(event: dict[str, Any]) -> None:
    """One Responses API stream event, against the schema of its own type."""
    name = _event_schemas().get(event.get("type", ""))
    assert name is not None, f"no Responses stream event has type {event.get('type')!r}"
    check(name, event)
