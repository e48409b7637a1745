"""The OpenAPI document, completed so that it tells every answer an operation can give.

FastAPI documents the success of each operation and what a route declares; the errors come
from shared mechanisms (the auth dependencies, request validation, the problem handlers, the
body limit), so they are documented here from the same facts, once for every operation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel

from capex.api.deps import get_coordinator, get_session, get_session_factory, get_token
from capex.api.middleware import WRITE_METHODS
from capex.api.problems import PROBLEM_JSON
from capex.schemas.common import Problem, body_models

PROBLEM_REF = "#/components/schemas/Problem"
BEARER = (
    "Send `Authorization: Bearer <access_token>`, the token that `POST /api/v1/auth/token`"
    " gives for a username and password."
)

MEANINGS = {
    400: "The body is not well-formed: malformed JSON, not UTF-8, or an unreadable form.",
    401: "Sign in first: the bearer token is missing, unknown, expired or revoked.",
    403: "Signed in, but not allowed to do this.",
    404: "Nothing of that id here, or nothing the caller may see.",
    409: "The change conflicts with the current state, or with another change made meanwhile;"
    " read and retry.",
    413: "The body is larger than the server accepts.",
    422: "A parameter or a field of the body breaks a rule; `errors` names each one.",
    429: "Too many writes from this account or this address (the write limits), or too many"
    " failed sign-ins; retry after the seconds that `Retry-After` gives.",
    503: "The database is not answering, or too busy to answer in time (or, at sign-in, too"
    " many passwords are being checked at once; or, for matches, the server's first matching"
    " index is not ready yet); retry after the seconds that `Retry-After` gives.",
}

HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer`: the scheme to authenticate with",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "whole seconds until another attempt (another write) is accepted",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    503: {
        "Retry-After": {
            "description": "seconds until the service may answer again",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}

# What FastAPI writes when a route gives no description of its own.
_GENERIC_DESCRIPTIONS = {"Validation Error", "Additional Response"}


def install(app: FastAPI) -> None:
    """Serve the completed document at ``app.openapi_url``."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = complete(app, generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Add the components and error answers that the generated ``schema`` lacks."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    # Every body model as pydantic writes it: that covers the bodies an endpoint validates
    # itself (to name unknown skills in the same 422), which FastAPI cannot know of, and it
    # keeps integer bounds such as 2^63-1 exact (FastAPI's own document makes them floats).
    _add_component(components, Problem)
    for model in body_models():
        _add_component(components, model, replace=True)
    # Included routers nest: a route context is a route with the prefix and dependencies
    # it has where it is included, as FastAPI itself reads them for the document.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            for status in sorted(error_statuses(route, method, operation)):
                operation["responses"].setdefault(str(status), {})
            _describe_errors(operation)
    for scheme in schema["components"].get("securitySchemes", {}).values():
        scheme.setdefault("description", BEARER)
    # Components nothing refers to go: FastAPI's own 422 shape (the problem document
    # replaced it), and the definitions FastAPI writes for the vocabularies' StrEnums, which
    # the fields publish inline (see capex.schemas.common).
    referenced = _refs(schema["paths"])
    pending = set(referenced)
    while pending:
        name = pending.pop().rsplit("/", 1)[-1]
        found = _refs(components.get(name, {})) - referenced
        referenced |= found
        pending |= found
    for name in list(components):
        if f"#/components/schemas/{name}" not in referenced:
            del components[name]
    return schema


def error_statuses(route: RouteContext, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses the shared mechanisms may answer for this operation."""
    calls = set(_calls(route.dependant))
    has_body = "requestBody" in operation or route.body_field is not None
    statuses = set()
    if has_body:
        statuses |= {400, 413, 422}
    if operation.get("parameters"):
        statuses.add(422)
    if any(parameter["in"] == "path" for parameter in operation.get("parameters", ())):
        statuses.add(404)
    if get_token in calls:
        statuses.add(401)
    if get_coordinator in calls:
        statuses.add(403)
    uses_database = get_session in calls or get_session_factory in calls
    if uses_database:
        statuses.add(503)
    if uses_database and method not in ("GET", "HEAD"):
        # A write the database refuses (a unique index, a check) is answered 409.
        statuses.add(409)
    if method in WRITE_METHODS:
        # Every write is counted against the write limits, in the database.
        statuses |= {429, 503}
    return statuses


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _describe_errors(operation: dict[str, Any]) -> None:
    for code, response in operation["responses"].items():
        if not code.isdigit() or int(code) < 400:
            continue
        status = int(code)
        if _is_generic(status, response.get("description")):
            response["description"] = MEANINGS.get(status, HTTPStatus(status).phrase)
        response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
        if status in HEADERS:
            response.setdefault("headers", {}).update(HEADERS[status])


def _is_generic(status: int, description: str | None) -> bool:
    if not description or description in _GENERIC_DESCRIPTIONS:
        return True
    try:
        return description == HTTPStatus(status).phrase
    except ValueError:
        return False


def _add_component(
    components: dict[str, Any], model: type[BaseModel], *, replace: bool = False
) -> None:
    """Put ``model`` and the models it nests into ``components`` (over FastAPI's: ``replace``)."""
    document = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in document.pop("$defs", {}).items():
        if replace:
            components[name] = definition
        else:
            components.setdefault(name, definition)
    if replace:
        components[model.__name__] = document
    else:
        components.setdefault(model.__name__, document)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()
