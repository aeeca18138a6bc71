"""Check one Graph exchange against the team's OpenAPI excerpt of Graph v1.0.

The excerpt (`docs/graph/graph-v1.0-excerpt.openapi.yaml`, provenance in its `info`) is
generated from Microsoft's Graph metadata; holding both the emulator's answers
and the app's requests to it keeps the emulator honest and catches an app
that sends what real Graph would refuse (an `assignLicense` without
`removeLicenses`, a `$select` of a property the excerpt does not know).

`check_exchange` returns human-readable violations (empty when all is well):
the response body against the operation's response for that status (`4XX`
and `5XX` ranges included; undeclared error statuses against Graph's error
schema), the request body against the operation's request body, `$select`
items against the parameter's enum, and every `$batch` item as an exchange of
its own.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml  # type: ignore[import-untyped, unused-ignore]
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_URI = "urn:graph-v1.0-excerpt"
API_PREFIX = "/v1.0"
ERROR_SCHEMA = "#/components/schemas/microsoft.graph.ODataErrors.ODataError"


def default_spec_path() -> Path:
    """`docs/graph/graph-v1.0-excerpt.openapi.yaml`: the excerpt lives in the repo."""
    repo = Path(__file__).resolve().parents[2]
    return repo / "docs" / "graph" / "graph-v1.0-excerpt.openapi.yaml"


@functools.cache
def load_spec(path: Path | None = None) -> dict[str, Any]:
    """Read the excerpt once per process."""
    with (path or default_spec_path()).open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.safe_load(handle)
    return spec


@functools.cache
def _registry(path: Path | None) -> Registry:
    resource = Resource.from_contents(load_spec(path), default_specification=DRAFT4)
    registry: Registry = Registry().with_resource(SPEC_URI, resource)
    return registry


@functools.cache
def _validator(pointer: str, path: Path | None) -> OAS30Validator:
    return OAS30Validator(
        {"$ref": SPEC_URI + pointer},
        registry=_registry(path),
        format_checker=oas30_format_checker,
    )


def _errors(instance: Any, pointer: str, where: str, path: Path | None) -> list[str]:
    validator = _validator(pointer, path)
    found = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    problems = []
    for error in found:
        at = "/".join(str(p) for p in error.absolute_path) or "(root)"
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        problems.append(f"{where}: at {at}: {message}")
    return problems


def _template_for(path: str, spec: dict[str, Any]) -> str | None:
    """Match a decoded path (after /v1.0) to a path template of the spec.

    A key in parentheses (`users('...')`, `operations('...')`) is a segment of its own, a
    namespace-qualified action (`microsoft.graph.assignLicense`,
    `microsoft.graph.teamsAdministration.assignNumber`) is the action, and a template whose
    literal segments match wins over one that matches with a placeholder.
    """
    segments: list[str] = []
    for part in path.lstrip("/").split("/"):
        keyed = _KEYED.match(part)
        segments += [keyed.group(1), keyed.group(2)] if keyed else [part] if part else []
    if len(segments) > 1:
        segments[-1] = _NAMESPACE.sub("", segments[-1])
    best: tuple[int, str] | None = None
    for template in spec["paths"]:
        parts = [p for p in template.split("/") if p]
        if len(parts) != len(segments):
            continue
        placeholders = 0
        for p, s in zip(parts, segments, strict=True):
            if p.startswith("{") and p.endswith("}"):
                placeholders += 1
            elif p != s:
                break
        else:
            if best is None or placeholders < best[0]:
                best = (placeholders, str(template))
    return None if best is None else best[1]


_KEYED = re.compile(r"^([A-Za-z]+)\((.*)\)$")
_NAMESPACE = re.compile(r"^microsoft\.graph\.(?:[A-Za-z]+\.)?")


def _pointer(ref: str) -> str:
    return ref if ref.startswith("#") else "#" + ref


def _json_schema_pointer(content_holder: dict[str, Any], base: str) -> str | None:
    """Pointer to the JSON schema under `content.application/json.schema` (following a $ref)."""
    content = content_holder.get("content", {}).get("application/json")
    if content is None or "schema" not in content:
        return None
    schema = content["schema"]
    if "$ref" in schema and len(schema) == 1:
        return _pointer(schema["$ref"])
    return base + "/content/application~1json/schema"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def check_exchange(
    method: str,
    path: str,
    status: int,
    response_body: Any,
    request_body: Any = None,
    *,
    query: str = "",
    check_request: bool = True,
    spec_path: Path | None = None,
) -> list[str]:
    """Violations of the excerpt by one exchange; `path` may include `/v1.0` and a query."""
    spec = load_spec(spec_path)
    split = urlsplit(path)
    query = query or split.query
    decoded = unquote(split.path)
    if decoded.startswith(API_PREFIX):
        decoded = decoded[len(API_PREFIX) :]
    label = f"{method.upper()} {decoded} -> {status}"
    template = _template_for(decoded, spec)
    operation = None if template is None else spec["paths"][template].get(method.lower())
    if template is None or operation is None:
        # A call outside the excerpt is the client's doing; an error answer must still be Graph's.
        problems = []
        if check_request:
            problems.append(f"{label}: the excerpt has no such operation")
        if status >= 400:
            problems += _errors(response_body, ERROR_SCHEMA, f"{label} response", spec_path)
        return problems
    op_pointer = f"#/paths/{_escape(template)}/{method.lower()}"
    problems = _check_response(spec, operation, op_pointer, status, response_body, label, spec_path)
    if check_request:
        problems += _check_request(operation, op_pointer, request_body, label, spec_path)
        problems += _check_select(operation, query, label)
    if template == "/$batch" and status == 200:
        problems += _check_batch_items(request_body, response_body, check_request, spec_path)
    return problems


def _check_response(
    spec: dict[str, Any],
    operation: dict[str, Any],
    op_pointer: str,
    status: int,
    body: Any,
    label: str,
    spec_path: Path | None,
) -> list[str]:
    responses = operation.get("responses", {})
    key = next((k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
    if key is None:
        if status >= 400:
            return _errors(body, ERROR_SCHEMA, f"{label} (undeclared status)", spec_path)
        return [f"{label}: status {status} is not a declared response ({sorted(responses)})"]
    response = responses[key]
    base = f"{op_pointer}/responses/{key}"
    if "$ref" in response:
        base = _pointer(response["$ref"])
        response = _resolve(spec, base)
    pointer = _json_schema_pointer(response, base)
    if pointer is None:
        if body not in (None, b"", ""):
            return [f"{label}: response {key} has no body in the excerpt, got {body!r:.80}"]
        return []
    if body is None:
        return [f"{label}: response {key} must have a JSON body"]
    return _errors(body, pointer, f"{label} response", spec_path)


def _check_request(
    operation: dict[str, Any], op_pointer: str, body: Any, label: str, spec_path: Path | None
) -> list[str]:
    request_body = operation.get("requestBody")
    if request_body is None:
        return []
    pointer = _json_schema_pointer(request_body, f"{op_pointer}/requestBody")
    if body is None:
        return [f"{label}: the request body is required"] if request_body.get("required") else []
    if pointer is None:
        return []
    return _errors(body, pointer, f"{label} request", spec_path)


def _check_select(operation: dict[str, Any], query: str, label: str) -> list[str]:
    selected = dict(parse_qsl(query, keep_blank_values=True)).get("$select")
    if selected is None:
        return []
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "$select":
            allowed = parameter.get("schema", {}).get("items", {}).get("enum")
            if allowed is None:
                return []
            unknown = [s.strip() for s in selected.split(",") if s.strip() not in allowed]
            return (
                [f"{label}: $select of properties not in the excerpt: {unknown}"] if unknown else []
            )
    return [f"{label}: $select is not a parameter of this operation"]


def _check_batch_items(
    request_body: Any, response_body: Any, check_request: bool, spec_path: Path | None
) -> list[str]:
    if not isinstance(request_body, dict) or not isinstance(response_body, dict):
        return []
    sent = {
        str(item.get("id")): item
        for item in request_body.get("requests", [])
        if isinstance(item, dict)
    }
    problems: list[str] = []
    for answer in response_body.get("responses", []):
        item = sent.get(str(answer.get("id")))
        if item is None:
            problems.append(f"$batch: response id {answer.get('id')!r} matches no request")
            continue
        url = str(item.get("url", ""))
        problems += [
            f"$batch item {answer.get('id')}: {p}"
            for p in check_exchange(
                str(item.get("method", "")),
                url if url.startswith("/") else "/" + url,
                int(answer.get("status", 0)),
                answer.get("body"),
                item.get("body"),
                check_request=check_request,
                spec_path=spec_path,
            )
        ]
    return problems


def _resolve(spec: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = spec
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    assert isinstance(node, dict)
    return node
