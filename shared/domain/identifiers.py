"""The shapes of a request's identifiers, as regular expressions the validator and the
JSON Schema share, and the checks a regular expression cannot make alone: a
userPrincipalName (no dot first, last or twice before the @) and an RFC 4514
distinguished name. Pure standard library."""

from __future__ import annotations

import re
from typing import Final

REQUEST_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
EMPLOYEE_ID = re.compile(r"[A-Za-z0-9._-]{1,16}")
# Characters Entra ID allows in the part before the @ (plus `$`, which Graph addresses
# with the key syntax); `#` covers guest markers such as `#EXT#`.
UPN_LOCAL = re.compile(r"[A-Za-z0-9'._!#^~$&+=-]{1,113}")
DOMAIN_LABELS = r"([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
DOMAIN = re.compile(r"(?=.{1,253}$)" + DOMAIN_LABELS)
SKU_PART = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
PLAN_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
# RFC 4514: an attribute type is a keyword or a numeric OID.
_DN_ATTRIBUTE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")
_DN_SPECIAL: Final = frozenset('"+,;<>\\')
MAX_DN_CHARS: Final = 1024


def upn_problem(upn: str) -> str | None:
    """Why `upn` is not a valid userPrincipalName, or None."""
    local, at, domain = upn.rpartition("@")
    if not at or not local:
        return "must be local@domain"
    if len(local) > 113:
        return "the part before @ is longer than 113 characters"
    if not UPN_LOCAL.fullmatch(local):
        return "the part before @ has characters a userPrincipalName cannot contain"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "the part before @ cannot start or end with a dot or hold two dots in a row"
    if not DOMAIN.fullmatch(domain):
        return "the domain is not a valid DNS name"
    return None


def dn_problem(dn: str) -> str | None:
    """Why `dn` is not an RFC 4514 distinguished name of an AD object, or None.

    `attr=value` pairs separated by `,` (or `+` inside one RDN); special characters in a
    value escaped with `\\` (or as `\\XX` hex pairs); a value may also be `#` and hex.
    Control characters are refused, and at least one `DC=` component is required (an AD
    object lives in a domain)."""
    if not 3 <= len(dn) <= MAX_DN_CHARS:
        return f"must be 3 to {MAX_DN_CHARS} characters"
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or 0xD800 <= ord(ch) < 0xE000 for ch in dn):
        return "must not contain control characters"
    try:
        types = _dn_attribute_types(dn)
    except ValueError as exc:
        return f"is not an RFC 4514 distinguished name: {exc}"
    if "dc" not in types:
        return "must have at least one DC= component (e.g. CN=Jane Doe,OU=Staff,DC=contoso,DC=com)"
    return None


def _dn_attribute_types(dn: str) -> set[str]:
    """Parse a DN; the attribute types it uses (lower case); ValueError if malformed."""
    types: set[str] = set()
    position = 0
    while True:
        equals = dn.find("=", position)
        if equals < 0:
            raise ValueError(f"expected attribute=value at character {position + 1}")
        attribute = dn[position:equals].strip()
        if not _DN_ATTRIBUTE_TYPE.fullmatch(attribute):
            raise ValueError(f"{attribute[:40]!r} is not an attribute type")
        types.add(attribute.lower())
        position = _dn_value_end(dn, equals + 1)
        if position == len(dn):
            return types
        position += 1  # the "," or "+" between components


def _dn_value_end(dn: str, start: int) -> int:
    """Where the attribute value starting at `start` ends (at `,`, `+` or the end)."""
    if start < len(dn) and dn[start] == "#":  # a BER-encoded value as hex
        end = start + 1
        while end < len(dn) and dn[end] not in ",+":
            end += 1
        hexdigits = dn[start + 1 : end]
        if (
            not hexdigits
            or len(hexdigits) % 2
            or not all(c in "0123456789abcdefABCDEF" for c in hexdigits)
        ):
            raise ValueError("a # value must be an even number of hex digits")
        return end
    position = start
    while position < len(dn):
        char = dn[position]
        if char == "\\":
            pair = dn[position + 1 : position + 3]
            if pair[:1] and (pair[0] in _DN_SPECIAL or pair[0] in " #="):
                position += 2
                continue
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                position += 3
                continue
            raise ValueError(f"a bad escape at character {position + 1}")
        if char in ",+":
            break
        if char in '";<>':
            raise ValueError(f"{char!r} at character {position + 1} must be escaped")
        position += 1
    if position == start:
        raise ValueError(f"an empty value at character {start + 1}")
    return position
