"""The fake exo's state and control routes (src/exo/api/main.py at b5375f8): ``GET /state`` and
``/state/<part>``, ``GET /events``, and — with a simulated cluster — ``GET /instance/placement``,
``/instance/previews``, ``/instance/{id}``, ``POST /place_instance``, ``DELETE /instance/{id}``,
``POST /v1/cancel/{id}``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.exo_state import exo_state, part

if TYPE_CHECKING:
    from tests.fakes.provider import FakeProvider


def whole_state(fake: FakeProvider) -> dict[str, Any]:
    if fake.cluster is not None:
        return fake.cluster.state()
    return exo_state(fake.ready, fake.loading, fake.downloading)


def answer(fake: FakeProvider, request: web.Request, body: Any) -> web.Response | None:
    """The answer for an exo route, or None (not one of these)."""
    return _answer(fake, request, body)


def _answer(fake: FakeProvider, request: web.Request, body: Any) -> web.Response | None:
    path, method = request.path, request.method
    if method == "GET" and path == "/state":
        return _json(200, whole_state(fake))
    if method == "GET" and path.startswith("/state/"):
        if not fake.exo_parts:  # before v1.0.70: the dashboard's static files answer
            return web.Response(status=404, text="Not Found")
        return _json(*part(whole_state(fake), path.removeprefix("/state/")))
    if method == "GET" and path == "/events":  # the whole event log: never for a probe
        return _json(200, [{"idx": i, "event": {"NodeGatheredInfo": {}}} for i in range(20000)])
    return _control(fake, request, body) if fake.cluster is not None else None


def _control(fake: FakeProvider, request: web.Request, body: Any) -> web.Response | None:
    path, method, cluster = request.path, request.method, fake.cluster
    assert cluster is not None
    model = request.query.get("model_id", "")
    if method == "GET" and path == "/instance/placement":
        return _json(*cluster.placement(model))
    if method == "GET" and path == "/instance/previews":
        return _json(*cluster.previews(model))
    if method == "POST" and path == "/place_instance":
        return _json(*cluster.place(body))
    if path.startswith("/instance/") and method in ("GET", "DELETE"):
        instance_id = path.removeprefix("/instance/")
        return _json(*(cluster.delete(instance_id) if method == "DELETE" else cluster.instance(instance_id)))
    if method == "POST" and path.startswith("/v1/cancel/"):
        return _json(*cluster.cancel(path.removeprefix("/v1/cancel/")))
    return None


def _json(status: int, data: Any) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), content_type="application/json")
