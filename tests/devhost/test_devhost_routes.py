"""Route templates as the Functions host (ASP.NET Core routing) reads and matches them."""

from __future__ import annotations

import pytest

from local_stack.devhost.config import DevHostError, parse_host_options
from local_stack.devhost.routes import RouteTemplate, http_trigger


def _match(template: str, path: str, prefix: str = "api") -> dict[str, str] | None:
    parsed = RouteTemplate.parse(prefix, template, "test")
    return parsed.match([part for part in path.split("/") if part])


def test_literal_segments_match_case_insensitively() -> None:
    """`Onboarding-Requests` matches `onboarding-requests`, as ASP.NET routing does."""
    assert _match("onboarding-requests", "API/Onboarding-Requests") == {}


def test_a_parameter_takes_one_whole_segment() -> None:
    """`{requestId}` captures one segment and never spans two."""
    assert _match("r/{requestId}", "api/r/HR-1") == {"requestId": "HR-1"}
    assert _match("r/{requestId}", "api/r/a/b") is None
    assert _match("r/{requestId}", "api/r") is None


@pytest.mark.parametrize(
    ("constraint", "good", "bad"),
    [
        ("int", "-42", "4.2"),
        ("int", "2147483647", "2147483648"),
        ("long", "2147483648", "x"),
        ("bool", "TRUE", "yes"),
        ("guid", "6e7b768e-07e2-4810-8459-485f84f8f204", "6e7b768e"),
        ("alpha", "abcXYZ", "abc1"),
        ("double", "1.5", "one"),
        ("minlength(3)", "abc", "ab"),
        ("maxlength(3)", "abc", "abcd"),
        ("length(2)", "ab", "abc"),
        ("length(2,3)", "abc", "a"),
        ("min(10)", "10", "9"),
        ("max(10)", "10", "11"),
        ("range(1,5)", "5", "6"),
        ("regex(^HR-[0-9]+$)", "hr-12", "HR-x"),
    ],
)
def test_inline_constraints_accept_and_refuse_like_aspnet(
    constraint: str, good: str, bad: str
) -> None:
    """Each supported constraint lets a matching value through and refuses another."""
    assert _match(f"v/{{value:{constraint}}}", f"api/v/{good}") == {"value": good}
    assert _match(f"v/{{value:{constraint}}}", f"api/v/{bad}") is None


def test_constraints_combine() -> None:
    """`{n:int:min(1)}` needs both."""
    assert _match("n/{n:int:min(1)}", "api/n/3") == {"n": "3"}
    assert _match("n/{n:int:min(1)}", "api/n/0") is None


def test_optional_default_and_catch_all_parameters() -> None:
    """`{x?}` may be absent, `{x=v}` falls back to v, `{*rest}` takes the remaining path."""
    assert _match("a/{x?}", "api/a") == {}
    assert _match("a/{x=seven}", "api/a") == {"x": "seven"}
    assert _match("a/{x=seven}", "api/a/eight") == {"x": "eight"}
    assert _match("files/{*path}", "api/files/a/b/c") == {"path": "a/b/c"}
    assert _match("files/{*path}", "api/files") == {}


def test_an_empty_prefix_puts_routes_at_the_root() -> None:
    """routePrefix "" serves `/text` instead of `/api/text`."""
    assert _match("text", "text", prefix="") == {}
    assert _match("text", "api/text", prefix="") is None


def test_precedence_orders_literal_before_constrained_before_plain_before_catch_all() -> None:
    """ASP.NET tries the most specific template first."""
    templates = ["{*all}", "{name}", "{id:int}", "special"]
    ordered = sorted(
        (RouteTemplate.parse("", t, "test") for t in templates), key=lambda t: t.precedence
    )
    assert [t.text for t in ordered] == ["special", "{id:int}", "{name}", "{*all}"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("x/{id:nosuch}", "unknown route constraint 'nosuch'"),
        ("x/{id:minlength}", "minlength() needs"),
        ("file.{ext}", "mixes text and parameters"),
        ("{x?}/tail", "must be the last segment"),
        ("{*rest}/tail", "must be the last segment"),
    ],
)
def test_templates_the_host_cannot_serve_are_refused(template: str, message: str) -> None:
    """An unreadable template stops the host at start with the reason."""
    with pytest.raises(DevHostError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RouteTemplate.parse("api", template, "function 'f'")


def test_a_binding_without_methods_accepts_any_method_and_defaults_its_route() -> None:
    """No `methods` = every method; no `route` = the function's name; auth level kept."""
    trigger = http_trigger({"type": "httpTrigger", "authLevel": "FUNCTION"}, "fn", "api", "f")
    assert trigger.template.text == "api/fn"
    assert trigger.allows("PATCH")
    assert trigger.auth_level == "FUNCTION"
    limited = http_trigger({"methods": ["get", "Post"]}, "fn", "api", "f")
    assert limited.allows("POST")
    assert not limited.allows("DELETE")


def test_the_route_prefix_defaults_to_api_and_reads_host_json() -> None:
    """extensions.http.routePrefix, default `api`, slashes trimmed."""
    assert parse_host_options({}).http_route_prefix == "api"
    options = parse_host_options({"extensions": {"http": {"routePrefix": "/v1/"}}})
    assert options.http_route_prefix == "v1"
    with pytest.raises(DevHostError, match="routePrefix must be a string"):
        parse_host_options({"extensions": {"http": {"routePrefix": 1}}})
