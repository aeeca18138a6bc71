"""The one exception the emulator's Graph logic raises, and Graph's error body.

Pure code (directory rules, OData parsing) raises `GraphRefusal`; only the HTTP
layer turns it into a response, so the same rule produces the same wire error
whether it was reached directly or as a `$batch` item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class DirectoryFormatError(ValueError):
    """The directory JSON (or a control-API change to it) does not follow the documented format."""


@dataclass(frozen=True)
class GraphRefusal(Exception):
    """A refusal Graph would answer with `status` and `{"error": {code, message}}`."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def selected_properties(raw: str, properties: Iterable[str], type_name: str) -> list[str]:
    """The property names a `$select` value asks for, matched case-insensitively as Graph
    does and spelled as the schema spells them; an unknown name is Graph's 400."""
    by_lower = {p.lower(): p for p in properties}
    chosen = []
    for part in raw.split(","):
        name = by_lower.get(part.strip().lower())
        if name is None:
            raise GraphRefusal(
                400,
                "BadRequest",
                "Parsing OData Select and Expand failed: Could not find a property named "
                f"'{part.strip()}' on type 'microsoft.graph.{type_name}'.",
            )
        chosen.append(name)
    return chosen


def error_body(
    code: str,
    message: str,
    *,
    request_id: str,
    client_request_id: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Build Graph's error body; `innerError.date` has no offset, exactly as Graph sends it."""
    moment = now or datetime.now(UTC)
    inner: dict[str, Any] = {
        "date": moment.strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    return {"error": {"code": code, "message": message, "innerError": inner}}


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphRefusal:
    """The 400 most directory-side validations use."""
    return GraphRefusal(400, code, message)


def not_found(key: str) -> GraphRefusal:
    """Graph's 404 for a user key that matches nothing (docs/graph-facts.md, "Reads")."""
    return GraphRefusal(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )
