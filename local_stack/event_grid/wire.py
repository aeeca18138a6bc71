"""Event Grid's publish API of a custom topic with the CloudEvents 1.0 input schema, as the
azure-eventgrid SDK calls it, and Event Grid's error answers. Pure: bytes in, a `Reply` or
the accepted events out.

What the SDK sends (azure-eventgrid 4.22.1, `_legacy/_helpers.py` `_build_request` and
`_legacy/_constants.py`): `POST <endpoint>?api-version=2018-01-01` with
`Content-Type: application/cloudevents-batch+json; charset=utf-8` and a JSON array of
CloudEvents; the credential as `aeg-sas-key`, `aeg-sas-token` or `Authorization: Bearer`.

Limits (learn.microsoft.com "Azure Event Grid quotas and limits", custom topics, and
"Publish events to Azure Event Grid custom topics using access keys"): the array at most
1 MB, each event at most 1 MB, at most 5,000 events per request; a larger one is answered
413. A MB is taken as 1,048,576 bytes: the real service was seen (by the
pm7y/AzureEventGridSimulator project) to let batches up to 1,536,000 bytes through, so the
stand-in is the stricter of the two.

Answers (the access-keys page): 200 with an empty body; 400 "event data has incorrect
format"; 401 "invalid access key"; 404 "incorrect endpoint"; 413 "array or event exceeds
size limits"; errors as `{"error": {"code", "message", "details": [{"code", "message"}]}}`.
The messages end with Event Grid's "Report '<id>:<time> (UTC)' to our forums..." suffix,
as recorded from the real service in azure-sdk-for-js's test recordings. Messages quoted
from the real service (through those recordings or pm7y/AzureEventGridSimulator) are the
missing-credential, missing-property, wrong-shape and unknown-path ones; the others are the
stand-in's own wording.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

API_PATH: Final = "/api/events"
API_VERSION: Final = "2018-01-01"
MAX_BATCH_BYTES: Final = 1_048_576
MAX_EVENT_BYTES: Final = 1_048_576
MAX_EVENTS_PER_BATCH: Final = 5_000
BATCH_TYPE: Final = "application/cloudevents-batch+json"
SINGLE_TYPES: Final = ("application/cloudevents+json", "application/json")
SCHEMA_NAME: Final = "CloudEventV10"
REQUIRED: Final = ("id", "source", "specversion", "type")
_OPTIONAL_STRINGS: Final = ("subject", "time", "datacontenttype", "dataschema")
# CloudEvents 1.0: attribute names "MUST consist of lower-case letters ('a' to 'z') or
# digits ('0' to '9') from the ASCII character set".
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
_STATUS_CODES: Final = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """One event of an accepted request: its bytes exactly as published, and its parse."""

    raw: bytes
    document: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.document["id"])


def report_suffix(request_id: str, now: datetime | None = None) -> str:
    at = now or datetime.now(UTC)
    # .NET's "M/d/yyyy h:mm:ss tt", as in the recorded answers.
    moment = f"{at.month}/{at.day}/{at.year} {(at.hour - 1) % 12 + 1}:{at:%M:%S %p}"
    return (
        f" Report '{request_id}:{moment} (UTC)' to our forums for assistance or raise a "
        "support ticket."
    )


def error(status: int, detail_code: str, message: str, request_id: str) -> Reply:
    """Event Grid's error body; the detail repeats the message, as the real one does."""
    text = message + report_suffix(request_id)
    code = _STATUS_CODES.get(status, str(status))
    body = {
        "error": {
            "code": code,
            "message": text,
            "details": [{"code": detail_code, "message": text}],
        }
    }
    return Reply(status, body, {"Content-Type": "application/json; charset=utf-8"})


def new_request_id() -> str:
    return str(uuid.uuid4())


def not_conforming(request_id: str) -> Reply:
    return error(
        400,
        "InputJsonInvalid",
        f"This resource is configured to receive event in '{SCHEMA_NAME}' schema. The JSON "
        "received does not conform to the expected schema.",
        request_id,
    )


def parse_publish(body: bytes, content_type: str | None, request_id: str) -> list[Accepted] | Reply:
    """The events of a publish request, or the answer Event Grid gives to a bad one."""
    if len(body) > MAX_BATCH_BYTES:
        return error(
            413,
            "PayloadTooLarge",
            f"The maximum size ({MAX_BATCH_BYTES}) has been exceeded.",
            request_id,
        )
    media, charset = _media_type(content_type)
    if (media != BATCH_TYPE and media not in SINGLE_TYPES) or charset not in (None, "utf-8"):
        return error(
            415,
            "InvalidContentType",
            "The Content-Type header is either missing or it doesn't have a valid value. The "
            "content type header must either be application/cloudevents+json; charset=utf-8 "
            "or application/cloudevents-batch+json; charset=UTF-8.",
            request_id,
        )
    try:
        text = body.decode("utf-8")
        spans = _batch_spans(text) if media == BATCH_TYPE else [_single_span(text)]
    except (UnicodeDecodeError, ValueError) as exc:
        return error(
            400, "InputJsonInvalid", f"The request body is not valid JSON: {exc}.", request_id
        )
    if not spans:
        return not_conforming(request_id)
    if len(spans) > MAX_EVENTS_PER_BATCH:
        return error(
            413,
            "PayloadTooLarge",
            f"The number of events ({len(spans)}) exceeds the maximum of "
            f"{MAX_EVENTS_PER_BATCH} per request.",
            request_id,
        )
    accepted: list[Accepted] = []
    for start, end, document in spans:
        raw = text[start:end].encode("utf-8")
        if len(raw) > MAX_EVENT_BYTES:
            return error(
                413,
                "PayloadTooLarge",
                f"The maximum size ({MAX_EVENT_BYTES}) has been exceeded.",
                request_id,
            )
        problem = cloud_event_problem(document)
        if problem is not None:
            return error(400, "InputJsonInvalid", problem, request_id)
        accepted.append(Accepted(raw, document))
    return accepted


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    media, *parameters = (part.strip() for part in content_type.split(";"))
    charset = None
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.lower(), charset


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_SPACE = " \t\n\r"


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _SPACE:
        index += 1
    return index


def _batch_spans(text: str) -> list[tuple[int, int, Any]]:
    """Each element of a JSON array with where its text starts and ends (so the stand-in can
    deliver the bytes the publisher sent)."""
    index = _skip(text, 0)
    if not text.startswith("[", index):
        raise ValueError("a batch is a JSON array of events")
    index = _skip(text, index + 1)
    spans: list[tuple[int, int, Any]] = []
    if text.startswith("]", index):
        index += 1
    else:
        while True:
            document, end = _DECODER.raw_decode(text, index)
            spans.append((index, end, document))
            index = _skip(text, end)
            if text.startswith(",", index):
                index = _skip(text, index + 1)
                continue
            if text.startswith("]", index):
                index += 1
                break
            raise ValueError(f"expected ',' or ']' at character {index}")
    if _skip(text, index) != len(text):
        raise ValueError(f"unexpected text after the array at character {index}")
    return spans


def _single_span(text: str) -> tuple[int, int, Any]:
    start = _skip(text, 0)
    document, end = _DECODER.raw_decode(text, start)
    if _skip(text, end) != len(text):
        raise ValueError(f"unexpected text after the event at character {end}")
    if isinstance(document, list):
        raise ValueError("a single event was expected (the batch content type takes an array)")
    return start, end, document


def cloud_event_problem(document: Any) -> str | None:
    """What makes `document` no CloudEvent 1.0 Event Grid takes, or None."""
    if not isinstance(document, Mapping):
        return (
            f"This resource is configured to receive event in '{SCHEMA_NAME}' schema. The JSON "
            "received does not conform to the expected schema."
        )
    for name in REQUIRED:
        value = document.get(name)
        if not isinstance(value, str) or not value:
            return (
                f"This resource is configured for '{SCHEMA_NAME}' schema and requires '{name}' "
                "property to be set."
            )
    if document["specversion"] != "1.0":
        return (
            f"The specversion '{document['specversion']}' is not supported: the topic takes "
            "CloudEvents 1.0."
        )
    for name in _OPTIONAL_STRINGS:
        if document.get(name) is not None and not isinstance(document[name], str):
            return f"The CloudEvent attribute '{name}' must be a string."
    if isinstance(document.get("time"), str) and not _is_rfc3339(document["time"]):
        return (
            f"The CloudEvent attribute 'time' ({document['time']!r}) is not an RFC 3339 timestamp."
        )
    if "data" in document and "data_base64" in document:
        return "A CloudEvent carries either 'data' or 'data_base64', not both."
    for name in document:
        if name not in ("data", "data_base64") and not _ATTRIBUTE_NAME.fullmatch(name):
            return (
                f"The CloudEvent attribute name '{name}' is invalid: lower-case letters and "
                "digits only."
            )
    return None


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")


def _is_rfc3339(text: str) -> bool:
    if not _RFC3339.fullmatch(text):
        return False
    try:
        # The fraction is checked by the pattern; fromisoformat is asked about the rest.
        datetime.fromisoformat(re.sub(r"\.\d+", "", text.upper()).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
