"""Extract the OpenAI schemas the conformance test needs from the published OpenAPI spec.

Source: https://github.com/openai/openai-openapi, ``openapi.yaml`` (OpenAPI 3.1). Run with any
Python that has PyYAML (a maintainer's tool, not run by the tests):

    git -C openai-openapi show HEAD:openapi.yaml > /tmp/openapi.yaml
    python3 tests/schemas/extract_openai.py /tmp/openapi.yaml <commit> > tests/schemas/openai.json

It keeps the named roots and every schema they reference, unchanged but for one thing: the
spec still marks some fields OpenAPI-3.0 style (``nullable: true``), which JSON Schema ignores;
those become ``anyOf [..., {"type": "null"}]`` as the spec intends.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

ROOTS = ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "ErrorResponse",
         "ListModelsResponse", "Model", "Response", "ResponseStreamEvent"]
PREFIX = "#/components/schemas/"


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(PREFIX):
            found.add(ref[len(PREFIX):])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def clean(node: Any) -> Any:
    """Drop documentation-only keys; turn ``nullable: true`` into a null alternative."""
    if isinstance(node, list):
        return [clean(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: clean(v) for k, v in node.items()
           if k not in ("description", "x-oaiMeta", "example", "examples", "title",
                        "x-stainless-const", "deprecated", "x-oaiExpandable", "x-oaiTypeLabel")}
    if out.pop("nullable", False):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def main() -> None:
    with open(sys.argv[1]) as source:
        spec = yaml.safe_load(source)
    schemas = spec["components"]["schemas"]
    keep: dict[str, Any] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = schemas[name]
        todo.extend(refs(schemas[name]) - keep.keys())
    out = {"source": "https://github.com/openai/openai-openapi openapi.yaml",
           "commit": sys.argv[2], "openapi": spec["openapi"], "api_version": spec["info"]["version"],
           "roots": ROOTS, "components": {"schemas": {k: clean(keep[k]) for k in sorted(keep)}}}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
