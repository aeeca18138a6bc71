"""Hostile `user-onboard` bodies, generated with hypothesis from a fixed seed.

`hostile_bodies()` is a strategy of `Body(kind, content)`; `generate(n, seed)` draws `n`
of them deterministically (the same list for the same seed, hypothesis version and code);
`queue_text(content)` is what an HR system could actually put on a queue for it;
`survey(bodies)` says how distinct they are and which kinds they hold.

Kinds (`KINDS`), the first four being the ones issue 8 names:

- `non_ascii_text`: non-ASCII text that is not JSON ("ceci n'est pas du JSON: é");
- `deep_json`: JSON nested 1,000 to 16,000 deep (arrays, objects, unclosed, inside a request);
- `unknown_fields`: thousands of unknown fields, with or without a requestId;
- `lone_surrogate_field`: a field name (or value) holding a lone surrogate escape `\\udcXX`;
- `random_bytes`, `random_text` (any code point, lone surrogates included: such text can
  only reach the queue base64-encoded, from its `surrogatepass` UTF-8 bytes);
- `oversized`: bodies over 32 KiB; `base64`: base64 wrappings of other hostile bodies;
- `near_valid`: a valid request with one to three fields mutated (some stay valid);
- `injection`: OData and URL injection attempts in userPrincipalName, employeeId and
  onPremisesImmutableId (`x' or startswith(userPrincipalName,'a` and friends);
- `json_values`: JSON that is not an object, duplicate keys, huge numbers, a BOM...

Every requestId a hostile body carries starts with `H-`, so it never names one of the
stress suite's own requests; a `syncDeadline` that parses is in the past, so a body that
happens to be valid still ends in bounded time.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

NAMED_KINDS: Final = ("non_ascii_text", "deep_json", "unknown_fields", "lone_surrogate_field")
KINDS: Final = (
    *NAMED_KINDS,
    "random_bytes",
    "random_text",
    "oversized",
    "base64",
    "near_valid",
    "injection",
    "json_values",
)
DEFAULT_SEED: Final = 20261124
MAX_QUEUE_BYTES: Final = 60_000  # under the 64 KiB a queue message holds
TARGET_UPN: Final = "hostile.target@contoso.com"  # a real user some near-valid bodies name
# Injection strings; users holding some of them exactly are created by the hostile part,
# so an escaped lookup must find exactly that user, and an unescaped one would not.
INJECTIONS: Final = (
    "x' or startswith(userPrincipalName,'a",
    "' or 1 eq 1 or '",
    "a') or (userPrincipalName eq 'b",
    "x'or'1'='1",
    "%27 or 1 eq 1",
    "../../users",
    "me",
    "a/b",
    "a?$filter=x",
    "a#frag",
    "$batch",
    "'",
    "''",
    "a''b",
    "\\'",
    "x' and employeeId eq '1",
    "users('x')",
    "x%2F..%2Fme",
    "a&$top=999",
    "$x'or'1'='1",
)
INJECTION_USERS: Final = {
    # onPremisesImmutableId -> UPN of a synced user holding it
    "x' or startswith(userPrincipalName,'a": "inj.immutable1@contoso.com",
    "' or 1 eq 1 or '": "inj.immutable2@contoso.com",
    "a') or (userPrincipalName eq 'b": "inj.immutable3@contoso.com",
}
INJECTION_UPNS: Final = (  # synced users whose UPN is an injection attempt that is valid
    "x'or'1'='1@contoso.com",
    "$x'or'1'='1@contoso.com",
    "o'brien'+'x@contoso.com",
)

_ID_CHARS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-"
_PAST_DEADLINES: Final = ("2020-01-01T00:00:00Z", "2024-02-29T23:59:59+01:00")


@dataclass(frozen=True)
class Body:
    """One hostile message body and the kind of hostility it is."""

    kind: str
    content: bytes | str


# --- building blocks -------------------------------------------------------------------


def _request_id() -> st.SearchStrategy[str]:
    return st.text(_ID_CHARS, min_size=4, max_size=24).map(lambda s: "H-" + s)


def _template(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request (of the stress suite's tenant)."""
    request: dict[str, Any] = {
        "requestId": draw(_request_id()),
        "userPrincipalName": draw(
            st.sampled_from([TARGET_UPN, "nobody@contoso.com", "jane.doe@contoso.com"])
        ),
        "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
    }
    if draw(st.booleans()):
        request["employeeId"] = draw(st.from_regex(r"[A-Za-z0-9._-]{1,16}", fullmatch=True))
    if draw(st.booleans()):
        request["usageLocation"] = draw(st.sampled_from(["FR", "DE", "US", "GB"]))
    if draw(st.booleans()):
        request["syncDeadline"] = draw(st.sampled_from(_PAST_DEADLINES))
    return request


_ANY_JSON: Final = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.just([]),
    st.just({}),
    st.just([1, "a", None]),
)


def _mutations() -> list[Callable[[st.DrawFn, dict[str, Any]], None]]:
    def retype(draw: st.DrawFn, r: dict[str, Any]) -> None:
        r[draw(st.sampled_from(sorted(r)))] = draw(_ANY_JSON)

    def drop(draw: st.DrawFn, r: dict[str, Any]) -> None:
        r.pop(draw(st.sampled_from(sorted(r))), None)

    def typo(draw: st.DrawFn, r: dict[str, Any]) -> None:
        name = draw(
            st.sampled_from(
                ["userPrincipleName", "requestID", "licences", "UsageLocation", "start_date", ""]
            )
        )
        r[name] = draw(_ANY_JSON)

    def location(draw: st.DrawFn, r: dict[str, Any]) -> None:
        r["usageLocation"] = draw(st.sampled_from(["fr", "XX", "FRA", "", "F R", "DE", "ZZ"]))

    def licenses(draw: st.DrawFn, r: dict[str, Any]) -> None:
        r["licenses"] = draw(
            st.sampled_from(
                [
                    [],
                    [{"skuPartNumber": f"SKU{n}"} for n in range(11)],
                    [{"skuPartNumber": "E3"}, {"skuPartNumber": "e3"}],
                    [{"skuPartNumber": "ENTERPRISEPACK", "disabledPlans": "YAMMER"}],
                    [{"skuPartNumber": "ENTERPRISEPACK", "disabledPlans": [1]}],
                    [{"skuPartNumber": "ENTERPRISEPACK", "extra": True}],
                    [{"skuPartNumber": "NO SUCH SKU"}],
                    [{"skuPartNumber": "NOSUCHSKU"}],
                    "ENTERPRISEPACK",
                    [["ENTERPRISEPACK"]],
                ]
            )
        )

    def deadline(draw: st.DrawFn, r: dict[str, Any]) -> None:
        r["syncDeadline"] = draw(
            st.sampled_from(
                [
                    "tomorrow",
                    "2026-13-01T00:00:00Z",
                    "2026-11-25 09:00:00",
                    "2026-11-25T09:00:00",
                    "2020-01-01T00:00:00Z",
                    "",
                ]
            )
        )

    def request_id(draw: st.DrawFn, r: dict[str, Any]) -> None:
        r["requestId"] = draw(
            st.sampled_from(["", "H-" + "x" * 200, "H-with space", "H-é", "H-a?b", "H-a#b"])
        )

    def upn(draw: st.DrawFn, r: dict[str, Any]) -> None:
        r["userPrincipalName"] = draw(
            st.one_of(
                st.sampled_from(
                    [
                        "no-at-sign",
                        "@contoso.com",
                        "a@",
                        "a..b@contoso.com",
                        ".a@contoso.com",
                        "a b@contoso.com",
                        "a/b@contoso.com",
                        "a?b@contoso.com",
                        "a%20b@contoso.com",
                        "x" * 114 + "@contoso.com",
                        "a@contoso..com",
                        "a\u0000@contoso.com",
                        "ä@contoso.com",
                    ]
                ),
                st.text(max_size=30),
            )
        )

    def employee_id(draw: st.DrawFn, r: dict[str, Any]) -> None:
        r["employeeId"] = draw(st.one_of(st.text(max_size=30), st.sampled_from(["", "x" * 17])))

    def immutable_id(draw: st.DrawFn, r: dict[str, Any]) -> None:
        r["onPremisesImmutableId"] = draw(
            st.one_of(st.text(max_size=40), st.sampled_from(["", "x" * 257, "a\tb", "é"]))
        )

    return [
        retype,
        drop,
        typo,
        location,
        licenses,
        deadline,
        request_id,
        upn,
        employee_id,
        immutable_id,
    ]


_MUTATIONS: Final = _mutations()


def _dump(draw: st.DrawFn, document: Any) -> str:
    """JSON text, in one of a few styles producers use."""
    style = draw(st.sampled_from(["compact", "spaced", "ascii", "indent"]))
    if style == "compact":
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    if style == "ascii":
        return json.dumps(document)
    if style == "indent":
        return json.dumps(document, indent=2, ensure_ascii=False)
    return json.dumps(document, ensure_ascii=False)


# --- the kinds -------------------------------------------------------------------------


@st.composite
def non_ascii_text(draw: st.DrawFn) -> Body:
    words = draw(
        st.text(
            st.characters(min_codepoint=0x80, exclude_categories=["Cs"]), min_size=1, max_size=60
        )
    )
    prefix = draw(st.sampled_from(["", "ceci n'est pas du JSON: ", "{", "requestId=", "Grüße "]))
    return Body("non_ascii_text", prefix + words)


@st.composite
def deep_json(draw: st.DrawFn) -> Body:
    shape = draw(st.sampled_from(["array", "object", "mixed", "unclosed", "in_request"]))
    if shape == "array":
        n = draw(st.integers(1_000, 16_000))
        text = "[" * n + "]" * n
    elif shape == "object":
        n = draw(st.integers(1_000, 5_000))  # 6 bytes a level: stays under 32 KiB
        text = '{"a":' * n + "1" + "}" * n
    elif shape == "mixed":
        n = draw(st.integers(500, 3_500))  # two levels per step
        text = '[{"a":' * n + "null" + "}]" * n
    elif shape == "unclosed":
        n = draw(st.integers(1_000, 16_000))
        text = "[" * n if draw(st.booleans()) else '{"a":' * (n // 3)
    else:
        n = draw(st.integers(1_000, 14_000))
        text = (
            '{"requestId": "H-deep", "userPrincipalName": "a@contoso.com", "licenses": '
            + "[" * n
            + "]" * n
            + "}"
        )
    return Body("deep_json", text)


@st.composite
def unknown_fields(draw: st.DrawFn) -> Body:
    count = draw(st.integers(1_000, 3_000))
    style = draw(st.sampled_from(["f", "typo", "unicode"]))
    names = {
        "f": [f"f{n}" for n in range(count)],
        "typo": [f"userPrincipleName{n}" for n in range(count)],
        "unicode": [f"ch\u00e4mp{n}" for n in range(count)],
    }[style]
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["requestId"] = draw(_request_id())
    if draw(st.booleans()):
        document["userPrincipalName"] = TARGET_UPN
    fields = {name: n % 10 for n, name in enumerate(names)}
    while len(json.dumps(fields, separators=(",", ":")).encode()) > 44_000:  # fits a queue
        fields = dict(list(fields.items())[: len(fields) * 9 // 10])
    document.update(fields)
    return Body("unknown_fields", json.dumps(document, separators=(",", ":"), ensure_ascii=False))


@st.composite
def lone_surrogate_field(draw: st.DrawFn) -> Body:
    escape = draw(
        st.one_of(
            st.integers(0xDC00, 0xDFFF).map(lambda c: f"\\u{c:04x}"),
            st.integers(0xD800, 0xDBFF).map(lambda c: f"\\u{c:04X}"),
        )
    )
    name = draw(st.text("abcdefXYZ_", max_size=6)) + escape + draw(st.text("abc123", max_size=6))
    parts = []
    if draw(st.booleans()):
        parts.append(f'"requestId": "{draw(_request_id())}"')
    where = draw(st.sampled_from(["name", "name", "value", "requestId", "nested"]))
    if where == "name":
        parts.append(f'"{name}": {draw(st.integers(0, 9))}')
    elif where == "value":
        parts.append(f'"userPrincipalName": "{name}@contoso.com"')
    elif where == "requestId":
        parts = [f'"requestId": "H-{name}"']
    else:
        parts.append(f'"licenses": [{{"skuPartNumber": "ENTERPRISEPACK", "{name}": []}}]')
    if draw(st.booleans()):
        parts.append('"userPrincipalName": "jane.doe@contoso.com"')
    return Body("lone_surrogate_field", "{" + ", ".join(parts) + "}")


@st.composite
def random_bytes(draw: st.DrawFn) -> Body:
    return Body("random_bytes", draw(st.binary(max_size=400)))


@st.composite
def random_text(draw: st.DrawFn) -> Body:
    alphabet = st.one_of(
        st.characters(),
        st.integers(0xD800, 0xDFFF).map(chr),  # lone surrogates
        st.sampled_from('{}[]":,\\ \n\t'),
    )
    return Body("random_text", draw(st.text(alphabet, max_size=200)))


@st.composite
def oversized(draw: st.DrawFn) -> Body:
    size = draw(st.integers(32 * 1024 + 1, 44_000))
    shape = draw(st.sampled_from(["padded_request", "string", "numbers", "plans"]))
    if shape == "padded_request":
        request = _template(draw)
        request["padding"] = ""
        base = len(json.dumps(request))
        request["padding"] = "y" * (size - base)
        text = json.dumps(request)
    elif shape == "string":
        text = json.dumps("z" * size)
    elif shape == "numbers":
        text = "[" + ",".join(["12345678"] * (size // 9 + 1)) + "]"
    else:
        request = _template(draw)
        plans = [f"PLAN_{n:05d}" for n in range(size // 13 + 1)]
        request["licenses"] = [{"skuPartNumber": "ENTERPRISEPACK", "disabledPlans": plans}]
        text = json.dumps(request)
    return Body("oversized", text)


@st.composite
def base64_wrapped(draw: st.DrawFn) -> Body:
    inner_kind = draw(st.sampled_from(["bytes", "deep", "request", "latin1", "garbage_text"]))
    inner: bytes
    if inner_kind == "bytes":
        inner = draw(st.binary(max_size=300))
    elif inner_kind == "deep":
        n = draw(st.integers(1_000, 10_000))
        inner = b"[" * n + b"]" * n
    elif inner_kind == "request":
        request = _template(draw)
        for _ in range(draw(st.integers(0, 2))):
            draw(st.sampled_from(_MUTATIONS))(draw, request)
        inner = json.dumps(request).encode()
    elif inner_kind == "latin1":
        inner = json.dumps({"requestId": draw(_request_id()), "x": "é"}).encode("latin-1")
    else:
        inner = draw(st.text(max_size=100)).encode("utf-8", "surrogatepass")
    text = base64.b64encode(inner).decode()
    layout = draw(st.sampled_from(["plain", "lines", "unpadded", "spaced"]))
    if layout == "lines":
        text = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    elif layout == "unpadded":
        text = text.rstrip("=")
    elif layout == "spaced":
        text = " " + text + " \n"
    return Body("base64", text)


@st.composite
def near_valid(draw: st.DrawFn) -> Body:
    request = _template(draw)
    for _ in range(draw(st.integers(1, 3))):
        draw(st.sampled_from(_MUTATIONS))(draw, request)
    text = _dump(draw, request)
    finish = draw(st.sampled_from(["", "", "", "bom", "trailing", "comma", "dupkey", "single"]))
    if finish == "bom":
        text = "\ufeff" + text
    elif finish == "trailing":
        text += " garbage"
    elif finish == "comma" and text.endswith("}"):
        text = text[:-1] + ",}"
    elif finish == "dupkey" and text.startswith("{"):
        text = '{"requestId": "H-dup",' + text[1:]
    elif finish == "single":
        text = text.replace('"', "'")
    return Body("near_valid", text)


@st.composite
def injection(draw: st.DrawFn) -> Body:
    request: dict[str, Any] = {
        "requestId": draw(_request_id()),
        "licenses": [{"skuPartNumber": "ENTERPRISEPACK"}],
    }
    attack = draw(
        st.one_of(
            st.sampled_from(INJECTIONS),
            st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
                lambda s: s + "'"
            ),
        )
    )
    field = draw(
        st.sampled_from(["userPrincipalName", "employeeId", "onPremisesImmutableId", "all"])
    )
    if field == "userPrincipalName":
        request[field] = draw(st.sampled_from([attack, attack + "@contoso.com", *INJECTION_UPNS]))
    elif field == "all":
        request["userPrincipalName"] = "nobody@contoso.com"
        request["employeeId"] = attack
        request["onPremisesImmutableId"] = attack
    else:
        request[field] = attack
    if draw(st.booleans()):
        request["syncDeadline"] = draw(st.sampled_from(_PAST_DEADLINES))
    return Body("injection", _dump(draw, request))


@st.composite
def json_values(draw: st.DrawFn) -> Body:
    text = draw(
        st.one_of(
            st.sampled_from(
                [
                    "",
                    " ",
                    "null",
                    "true",
                    "0",
                    "-0",
                    "1e999",
                    "NaN",
                    "Infinity",
                    '"a string"',
                    "[]",
                    "{}",
                    "9" * 5_000,
                    '{"requestId": ' + "9" * 5_000 + "}",
                    '{"requestId": 1}',
                    '{"requestId": null}',
                    '{"requestId": "H-d", "requestId": "H-e"}',
                    "\ufeff",
                    '\ufeff{"requestId": "H-bom"}',
                    '{"requestId": "H-ctl\\u0000\\u0001"}',
                    '{"requestId": "H-X", "<&>]]>": "\\ufffe\\uffff"}',
                ]
            ),
            st.recursive(_ANY_JSON, lambda inner: st.lists(inner, max_size=4), max_leaves=10).map(
                json.dumps
            ),
        )
    )
    return Body("json_values", text)


def hostile_bodies() -> st.SearchStrategy[Body]:
    """Any one hostile body."""
    return st.one_of(
        non_ascii_text(),
        deep_json(),
        unknown_fields(),
        lone_surrogate_field(),
        random_bytes(),
        random_text(),
        oversized(),
        base64_wrapped(),
        near_valid(),
        injection(),
        json_values(),
    )


def generate(n: int, seed_value: int = DEFAULT_SEED) -> list[Body]:
    """`n` hostile bodies, the same ones for the same seed, this module and the pinned
    hypothesis (no database, no shrinking).

    Hypothesis also draws, now and then, literals it finds in every *local* module loaded
    (the app's, the harness's): the bodies would change whenever any of them does, or
    with what happens to be imported. Generation turns that off."""
    with _without_local_constants():
        return _generate(n, seed_value)


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    from hypothesis.internal.conjecture import providers  # pinned: requirements-dev.txt

    original = getattr(providers, "_get_local_constants", None)
    if original is None or not hasattr(providers, "Constants"):
        yield  # another hypothesis: generation still works, only less reproducible
        return
    providers._get_local_constants = providers.Constants
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()


def _generate(n: int, seed_value: int) -> list[Body]:
    drawn: list[Body] = []

    @seed(seed_value)
    @settings(
        max_examples=n,
        database=None,
        derandomize=False,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile_bodies())
    def collect(body: Body) -> None:
        drawn.append(body)

    collect()
    return drawn[:n]


# --- what reaches the queue ----------------------------------------------------------


_NOT_CARRIABLE: Final = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> bool:
    """Text a queue message can carry as is (XML 1.0 characters, no CR)."""
    return _NOT_CARRIABLE.search(text) is None


def raw_bytes(content: bytes | str) -> bytes:
    """The body as the bytes the app would read (lone surrogates kept, `surrogatepass`)."""
    return content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content


def carriable_text(content: bytes | str) -> str | None:
    """The body as queue text when a queue can carry it as is, else None."""
    if isinstance(content, str):
        return content if _xml_safe(content) else None
    try:
        decoded = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return decoded if _xml_safe(decoded) else None


def queue_text(content: bytes | str) -> str:
    """What an HR system can put on the queue for this body: the text itself when a queue
    can carry it, else the base64 of its bytes (as the Azure portal sends). The app reads
    both (contract: a base64-encoded body is accepted)."""
    text = carriable_text(content)
    if text is None:
        text = base64.b64encode(raw_bytes(content)).decode("ascii")
    if len(text.encode("utf-8")) > MAX_QUEUE_BYTES:
        raise ValueError(f"a {len(text)}-character body does not fit a queue message")
    return text


# --- how varied a set of bodies is ----------------------------------------------------


@dataclass(frozen=True)
class Survey:
    total: int
    distinct: int
    by_kind: dict[str, int]
    wrapped: int  # posted base64-encoded by `queue_text` (not carriable as text)
    largest: int  # bytes

    @property
    def missing_kinds(self) -> list[str]:
        return [kind for kind in KINDS if not self.by_kind.get(kind)]

    @property
    def distinct_ratio(self) -> float:
        return self.distinct / self.total if self.total else 0.0


def survey(bodies: Sequence[Body]) -> Survey:
    digests = {hashlib.sha256(raw_bytes(b.content)).digest() for b in bodies}
    wrapped = sum(1 for b in bodies if carriable_text(b.content) is None)
    return Survey(
        total=len(bodies),
        distinct=len(digests),
        by_kind=dict(Counter(b.kind for b in bodies)),
        wrapped=wrapped,
        largest=max((len(raw_bytes(b.content)) for b in bodies), default=0),
    )
