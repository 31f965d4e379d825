"""What the OpenAPI document says beyond the routes' own declarations: headers and examples.

FastAPI writes no header a route does not declare, and some headers are set by middleware on every
answer (``X-Request-ID``); ``complete_document`` adds those to each response of each operation, so
a generated client and schemathesis see them, and the answers' examples (api/examples.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api import examples
from api.request_id import SANE_PATTERN

RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
IDEMPOTENT_REPLAYED: dict[str, Any] = {
    "Idempotent-Replayed": {
        "description": "Present on a replay: the answer is the first request's, nothing new was made",
        "required": True,
        "schema": {"type": "string", "enum": ["true"]},
    }
}
REQUEST_ID: dict[str, Any] = {
    "X-Request-ID": {
        "description": "The request's id, as logged and audited: the caller's own X-Request-ID when "
        "it matches the pattern, otherwise one made by the service",
        "required": True,
        "schema": {"type": "string", "pattern": SANE_PATTERN},
    }
}
# Answered by the limits in front of the application (api/limits.py), before the request id is set.
WITHOUT_REQUEST_ID = frozenset({"413", "429"})


def complete_document(app: FastAPI) -> None:
    """Declare ``X-Request-ID`` on every answer of every operation the application itself gives,
    and give the answers' schemas their examples."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default_openapi()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for code, response in operation.get("responses", {}).items():
                    if code not in WITHOUT_REQUEST_ID:
                        response.setdefault("headers", {}).update(REQUEST_ID)
        components = schema.get("components", {}).get("schemas", {})
        for name, example in examples.COMPONENTS.items():
            if name in components:
                components[name]["examples"] = [example]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
