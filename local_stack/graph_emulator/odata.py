"""The slice of OData URL syntax the app uses: `$select`, user keys, and `$filter`.

`$filter` gets a real tokenizer and a recursive-descent parser rather than
regular expressions, because the point of the emulator is to catch a client
that builds filters by string concatenation: a value like
`x' or startswith(userPrincipalName,'a` must be a harmless literal when the
client doubled the quote (`''`) and a 400 when it did not - never a silently
different query.

Supported grammar (whitespace-separated, keywords case-sensitive like OData):

    filter   := property "eq" string
              | property "in" "(" string ("," string)* ")"
    string   := "'" (any char except "'" | "''")* "'"

Anything else is refused with a 400 shaped like Graph's (the ODL parser's
"Invalid filter clause: ..." for syntax errors, `Request_UnsupportedQuery` for
valid OData the emulator - or Graph for these properties - does not support).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from .errors import GraphRefusal

#: Properties `$filter` supports, mapped from their case-insensitive spelling.
FILTERABLE = {p.lower(): p for p in ("userPrincipalName", "employeeId", "onPremisesImmutableId")}
MAX_IN_VALUES = 15

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_./]*")
_NUMBER_RE = re.compile(r"-?[0-9][0-9.eE+-]*")


def invalid_filter(detail: str) -> GraphRefusal:
    """A syntax error in `$filter`, worded like Graph's ODL parser."""
    return GraphRefusal(400, "BadRequest", f"Invalid filter clause: {detail}")


def unsupported_filter(prop: str | None) -> GraphRefusal:
    """Valid OData that this resource does not support."""
    if prop is None:
        return GraphRefusal(400, "Request_UnsupportedQuery", "Unsupported Query.")
    return GraphRefusal(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{prop}' "
        "of resource 'User'.",
    )


@dataclass(frozen=True)
class Token:
    """One lexical token of a `$filter` expression; `pos` is its 0-based offset."""

    kind: Literal["ident", "string", "number", "(", ")", ",", "end"]
    text: str
    pos: int


def tokenize(source: str) -> list[Token]:
    """Split a filter into tokens; an unterminated string literal is a syntax error."""
    tokens: list[Token] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char.isspace():
            i += 1
        elif char == "'":
            start, i, chars = i, i + 1, []
            while True:
                if i >= len(source):
                    raise invalid_filter(
                        f"There is an unterminated string literal at position {start} "
                        f"in '{source}'."
                    )
                if source[i] == "'":
                    if i + 1 < len(source) and source[i + 1] == "'":
                        chars.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(source[i])
                i += 1
            tokens.append(Token("string", "".join(chars), start))
        elif char in "(),":
            tokens.append(Token(char, char, i))  # type: ignore[arg-type]
            i += 1
        elif match := _IDENT_RE.match(source, i):
            tokens.append(Token("ident", match.group(), i))
            i = match.end()
        elif match := _NUMBER_RE.match(source, i):
            tokens.append(Token("number", match.group(), i))
            i = match.end()
        else:
            raise invalid_filter(
                f"Syntax error: character '{char}' is not valid at position {i} in '{source}'."
            )
    tokens.append(Token("end", "", len(source)))
    return tokens


@dataclass(frozen=True)
class Filter:
    """A parsed filter: users whose `prop` equals any of `values`."""

    prop: str
    values: tuple[str, ...]


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def syntax_error(self, token: Token, expected: str | None = None) -> GraphRefusal:
        if expected is not None:
            return invalid_filter(
                f"{expected} expected at position {token.pos} in '{self.source}'."
            )
        return invalid_filter(f"Syntax error at position {token.pos} in '{self.source}'.")

    def expect_string(self) -> str:
        token = self.take()
        if token.kind != "string":
            raise self.syntax_error(token, "String literal")
        return token.text

    def parse(self) -> Filter:
        first = self.take()
        if first.kind == "end":
            raise self.syntax_error(first, "Expression")
        if first.kind != "ident":
            raise self.syntax_error(first)
        if self.peek().kind == "(":
            # A function call (startswith, endswith, any...): valid OData, not supported here.
            raise unsupported_filter(self._first_property_argument())
        prop = FILTERABLE.get(first.text.lower())
        operator = self.take()
        if operator.kind != "ident":
            raise self.syntax_error(operator)
        if prop is None:
            if first.text.lower() in {"not"}:
                raise unsupported_filter(None)
            if _is_user_property(first.text):
                raise unsupported_filter(first.text)
            raise invalid_filter(
                f"Could not find a property named '{first.text}' on type 'microsoft.graph.user'."
            )
        if operator.text == "eq":
            values: tuple[str, ...] = (self.expect_string(),)
        elif operator.text == "in":
            values = self._parse_list()
        elif operator.text in {"ne", "gt", "ge", "lt", "le", "has"}:
            raise unsupported_filter(prop)
        else:
            raise self.syntax_error(operator)
        rest = self.peek()
        if rest.kind == "ident" and rest.text in {"and", "or"}:
            # Valid OData, but the emulator only answers single clauses: refuse rather than guess.
            raise unsupported_filter(prop)
        if rest.kind != "end":
            raise self.syntax_error(rest)
        return Filter(prop, values)

    def _parse_list(self) -> tuple[str, ...]:
        opening = self.take()
        if opening.kind != "(":
            raise self.syntax_error(opening, "'('")
        values = [self.expect_string()]
        while True:
            token = self.take()
            if token.kind == ")":
                break
            if token.kind != ",":
                raise self.syntax_error(token, "')' or ','")
            values.append(self.expect_string())
        if len(values) > MAX_IN_VALUES:
            raise GraphRefusal(
                400,
                "Request_UnsupportedQuery",
                "Too many child clauses specified in search filter expression containing 'OR' "
                f"operators: {len(values)}. Max allowed: {MAX_IN_VALUES}.",
            )
        return tuple(values)

    def _first_property_argument(self) -> str | None:
        following = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
        return following.text if following is not None and following.kind == "ident" else None


def _is_user_property(name: str) -> bool:
    from .directory import USER_PROPERTIES  # local: odata stays importable on its own

    return name.lower() in {p.lower() for p in USER_PROPERTIES}


def parse_filter(source: str) -> Filter:
    """Parse a decoded `$filter` value, or raise Graph's 400."""
    return _Parser(source).parse()


def quote_literal(value: str) -> str:
    """Quote a value as an OData string literal (`'` doubled): what a correct client does."""
    return "'" + value.replace("'", "''") + "'"


def parse_select(raw: str | None, known: Iterable[str]) -> list[str] | None:
    """Parse `$select` into canonical property names; an unknown property is Graph's 400."""
    if raw is None:
        return None
    by_lower = {name.lower(): name for name in known}
    selected: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            raise GraphRefusal(
                400, "BadRequest", f"Syntax error: empty item in $select clause '{raw}'."
            )
        canonical = by_lower.get(name.lower())
        if canonical is None:
            raise GraphRefusal(
                400,
                "BadRequest",
                "Parsing OData Select and Expand failed: Could not find a property named "
                f"'{name}' on type 'microsoft.graph.user'.",
            )
        if canonical not in selected:
            selected.append(canonical)
    return selected


_KEY_SEGMENT_RE = re.compile(r"^(?P<set>[A-Za-z]+)\((?P<key>.*)\)$", re.DOTALL)


def split_path(raw_path: str) -> list[str]:
    """Split a raw URL path into percent-decoded segments (decoding after splitting keeps %2F)."""
    segments = [unquote(s) for s in raw_path.split("/") if s]
    out: list[str] = []
    for segment in segments:
        match = _KEY_SEGMENT_RE.match(segment)
        if match:
            out.extend([match.group("set"), parse_key_literal(match.group("key"))])
        else:
            out.append(segment)
    return out


def parse_key_literal(text: str) -> str:
    """Parse the inside of `users('...')`: one quoted literal with `''` escapes."""
    tokens = tokenize(text)
    if len(tokens) != 2 or tokens[0].kind != "string":
        raise GraphRefusal(
            400,
            "BadRequest",
            f"Bad Request - Error in query syntax: key '{text}' is not one string literal.",
        )
    return tokens[0].text
