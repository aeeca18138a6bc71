"""The $filter tokenizer and parser on their own: hostile input stays a literal or is refused."""

from __future__ import annotations

import pytest

from local_stack.graph_emulator.errors import GraphRefusal
from local_stack.graph_emulator.odata import (
    Filter,
    parse_filter,
    quote_literal,
    split_path,
    tokenize,
)


def test_doubled_quotes_are_one_quote_inside_a_literal() -> None:
    """`''` inside a literal is a single `'`, not the end of the string."""
    (literal, end) = tokenize("'o''brien'")
    assert (literal.kind, literal.text, end.kind) == ("string", "o'brien", "end")


def test_an_escaped_injection_attempt_is_one_literal() -> None:
    """The whole hostile value, quotes and all, is the compared value."""
    hostile = "x' or startswith(userPrincipalName,'a"
    assert parse_filter(f"employeeId eq {quote_literal(hostile)}") == Filter(
        "employeeId", (hostile,)
    )


def test_property_names_are_case_insensitive_and_canonicalised() -> None:
    """`EMPLOYEEID` is understood as employeeId, like Graph."""
    assert parse_filter("EMPLOYEEID in ('a','b')") == Filter("employeeId", ("a", "b"))


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("employeeId eq 'x' or startswith(userPrincipalName,'a'", "Unsupported"),
        ("employeeId eq 'open", "unterminated string literal at position 14"),
        ("employeeId eq", "String literal expected at position 13"),
        ("employeeId in ('a';'b')", "is not valid at position 18"),
        ("employeeId in ('a' 'b')", "')' or ',' expected at position 19"),
        ("nickname eq 'a'", "Could not find a property named 'nickname'"),
    ],
)
def test_malformed_or_unsupported_filters_raise_graph_errors(source: str, fragment: str) -> None:
    """Each failure is a 400 whose message locates the problem."""
    with pytest.raises(GraphRefusal) as raised:
        parse_filter(source)
    assert raised.value.status == 400
    assert fragment in raised.value.message


def test_path_segments_are_decoded_after_splitting() -> None:
    """`%2F` stays inside its segment; the key syntax becomes set and key."""
    assert split_path("/users/a%2Fb%40c.com") == ["users", "a/b@c.com"]
    assert split_path("/users('%24x''y%40c.com')/assignLicense") == [
        "users",
        "$x'y@c.com",
        "assignLicense",
    ]
