"""The OpenAPI 3.1 document, built from the operations declared on the API endpoints.

Each endpoint is declared once with ``@operation(...)``: method, path, summary, and the pydantic
models of its query, body and response. The same declaration routes the request and documents it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.routing import Route

from server import __version__
from server.http import Endpoint, csrf_protected
from server.schemas import ErrorResponse

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_media: str = "application/json"
    response: type[BaseModel] | None = None
    response_list: bool = False
    response_media: str = "application/json"
    status: int = 200
    auth: str = "none"  # none | signed_in | organizer
    errors: tuple[int, ...] = field(default=(422,))


def operation(method: str, path: str, summary: str, tag: str, **kwargs: Any) -> Callable[[Endpoint], Endpoint]:
    """Declare an API operation on an endpoint (see ``api_routes``)."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        endpoint.__dict__.setdefault("operations", []).append(Operation(method, path, summary, tag, **kwargs))
        return endpoint

    return decorate


def routes_for(endpoints: Iterable[Endpoint]) -> list[Route]:
    """Starlette routes for declared endpoints, one per path, CSRF-checked on unsafe methods."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in endpoints:
        for op in endpoint.__dict__["operations"]:
            by_path.setdefault(op.path, {})[op.method] = endpoint
    routes = []
    for path, methods in by_path.items():
        routes.append(Route(path, _dispatch(methods), methods=list(methods)))
    return routes


def _dispatch(methods: dict[str, Endpoint]) -> Endpoint:
    protected = {m: csrf_protected(e) for m, e in methods.items()}

    async def endpoint(request: Any) -> Any:
        return await protected[request.method](request)

    endpoint.__dict__["operations"] = [op for e in methods.values() for op in e.__dict__["operations"]]
    return endpoint


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


PATH_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer" if kind == "int" else "string"}}
        for name, kind in PATH_PARAM.findall(path)
    ]


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def build_openapi(endpoints: Iterable[Endpoint], server_url: str | None = None) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    error_ref = _schema(ErrorResponse, components)
    for endpoint in endpoints:
        for op in endpoint.__dict__["operations"]:
            doc: dict[str, Any] = {
                "summary": op.summary,
                "tags": [op.tag],
                "operationId": f"{op.method.lower()}_{endpoint.__name__}",
            }
            params = _path_parameters(op.path) + (_query_parameters(op.query) if op.query else [])
            if params:
                doc["parameters"] = params
            if op.body is not None:
                doc["requestBody"] = {
                    "required": True,
                    "content": {op.body_media: {"schema": _schema(op.body, components)}},
                }
            elif op.body_media != "application/json":
                doc["requestBody"] = {"required": True, "content": {op.body_media: {"schema": {"type": "string"}}}}
            response: dict[str, Any] = {"description": "OK"}
            if op.response is not None:
                ref = _schema(op.response, components)
                schema = {"type": "array", "items": ref} if op.response_list else ref
                response["content"] = {op.response_media: {"schema": schema}}
            elif op.response_media != "application/json":
                response["content"] = {op.response_media: {"schema": {"type": "string"}}}
            responses: dict[str, Any] = {str(op.status): response}
            errors = set(op.errors)
            if op.auth != "none":
                errors |= {401, 403} if op.auth == "organizer" else {401}
            if op.method in {"POST", "PUT", "PATCH", "DELETE"}:
                errors.add(403)
            for status in sorted(errors):
                responses[str(status)] = {
                    "description": "Error",
                    "content": {"application/json": {"schema": error_ref}},
                }
            doc["responses"] = responses
            if op.method in {"POST", "PUT", "PATCH", "DELETE"}:
                doc["description"] = "Requires the X-CSRF-Token header (from GET /api/auth/csrf)."
            oa_path = PATH_PARAM.sub(r"{\1}", op.path)
            paths.setdefault(oa_path, {})[op.method.lower()] = doc
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "forumlive", "version": __version__, "description": "The forumlive HTTP API."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "forumlive_session"}},
        },
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document
