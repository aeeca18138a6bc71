"""A message body as a JSON value: plain or base64-encoded UTF-8 JSON, within the size and
nesting limits. Total on purpose (guarantee 6): whatever arrives, the answer is a value or
an `InvalidRequest`, never another exception. Pure standard library."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Final

from shared.domain.errors import FieldError, InvalidRequest

MAX_MESSAGE_BYTES: Final = 32 * 1024
# A valid request nests 4 levels (request, licenses, a license, its disabledPlans).
MAX_DEPTH: Final = 32


def decode_body(body: bytes | str) -> Any:
    """The JSON value of a message body, plain or base64-encoded; InvalidRequest otherwise.

    Total on purpose (guarantee 6): whatever arrives (any bytes, encoding, depth, size or
    characters), the answer is a value or an InvalidRequest, never another exception.
    The size is checked before anything is decoded, UTF-8 strictly, nesting before
    `json.loads` recurses, and base64 is tried only on text made of base64 characters.
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    text = _utf8_text(raw, "message")
    try:
        return _json_value(text)
    except InvalidRequest as plain:
        compact = "".join(text.split())
        if not compact or not _BASE64.fullmatch(compact):
            raise
        # The Azure portal base64-encodes message text by default.
        try:
            decoded = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise plain from None
        try:
            return _json_value(_utf8_text(decoded, "the base64-decoded message"))
        except InvalidRequest:
            raise plain from None


_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _utf8_text(raw: bytes, what: str) -> str:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidRequest(
            [FieldError("", f"{what} is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            [FieldError("", f"{what} is not UTF-8 text (invalid byte at offset {exc.start})")]
        ) from None
    return text.removeprefix("\ufeff")  # a byte order mark some producers put first


def _json_value(text: str) -> Any:
    depth = _nesting(text)
    if depth > MAX_DEPTH:
        raise InvalidRequest(
            [FieldError("", f"message nests {depth} levels deep; the limit is {MAX_DEPTH}")]
        )
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        problem = f"message is not valid JSON (nor base64-encoded JSON): {exc.msg} at {exc.pos}"
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        problem = f"message is not valid JSON: {str(exc)[:120]}"
    raise InvalidRequest([FieldError("", problem)])


class _DuplicateField(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose member names repeat is ambiguous: which `requestId` is meant?"""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _DuplicateField(f"the field {name[:200]!r} appears twice in one object")
        out[name] = value
    return out


def _nesting(text: str) -> int:
    """How deep arrays and objects nest, counted without recursion (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
