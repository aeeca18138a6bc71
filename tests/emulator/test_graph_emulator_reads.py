"""Reading users and SKUs: keys, $select, $filter, auth and Graph's response envelope."""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

import httpx
import pytest

from local_stack.graph_emulator import Emulator
from local_stack.graph_emulator.odata import quote_literal
from tests.support.graph import (
    DOLLAR_UPN,
    GUEST_UPN,
    HOSTILE_EMPLOYEE_ID,
    JANE_ID,
    JANE_UPN,
    MCOEV_SKU,
    QUOTE_UPN,
)

SYNC_FIELDS = "id,userPrincipalName,employeeId,onPremisesSyncEnabled,onPremisesImmutableId"
DEFAULT_PROPERTIES = {
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
}


def users_matching(client: httpx.Client, filter_: str) -> httpx.Response:
    return client.get("/users", params={"$filter": filter_, "$select": "id,userPrincipalName"})


# ------------------------------------------------------------------ $select


def test_select_returns_exactly_the_selected_properties(graph_client: httpx.Client) -> None:
    """Selected properties are present (even when null) and nothing else is."""
    body = graph_client.get(f"/users/{JANE_ID}", params={"$select": SYNC_FIELDS}).json()
    assert set(body) == {"@odata.context", *SYNC_FIELDS.split(",")}
    assert body["onPremisesSyncEnabled"] is True
    assert body["@odata.context"].endswith(f"$metadata#users({SYNC_FIELDS})/$entity")


def test_no_select_returns_only_graphs_default_properties(graph_client: httpx.Client) -> None:
    """Without $select, sync fields are absent, exactly as on Graph."""
    body = graph_client.get(f"/users/{JANE_ID}").json()
    assert set(body) == {"@odata.context", *DEFAULT_PROPERTIES}
    assert "onPremisesSyncEnabled" not in body
    assert body["@odata.context"].endswith("$metadata#users/$entity")


@pytest.mark.graph_invalid_requests
def test_select_of_an_unknown_property_is_a_400(graph_client: httpx.Client) -> None:
    """A typo in $select is refused, not silently ignored."""
    response = graph_client.get(f"/users/{JANE_ID}", params={"$select": "id,usageLocaton"})
    assert response.status_code == 400
    assert "usageLocaton" in response.json()["error"]["message"]


# --------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "path",
    [
        f"/users/{JANE_ID}",
        f"/users/{JANE_ID.upper()}",
        f"/users/{JANE_UPN}",
        "/users/JANE.Doe@Contoso.COM",
        "/users/jane.doe%40contoso.com",
        f"/users('{JANE_UPN}')",
    ],
)
def test_a_user_is_found_by_id_upn_or_key_syntax(graph_client: httpx.Client, path: str) -> None:
    """Id and UPN address the same user; UPNs are case-insensitive and may be encoded."""
    response = graph_client.get(path, params={"$select": "id"})
    assert response.status_code == 200
    assert response.json()["id"] == JANE_ID


def test_a_guest_upn_is_found_with_its_hash_percent_encoded(graph_client: httpx.Client) -> None:
    """`#EXT#` must travel as `%23EXT%23`; the emulator decodes the path segment."""
    encoded = quote(GUEST_UPN, safe="@")
    assert "%23EXT%23" in encoded
    response = graph_client.get(f"/users/{encoded}", params={"$select": "userPrincipalName"})
    assert response.json()["userPrincipalName"] == GUEST_UPN


def test_a_dollar_upn_is_found_with_the_key_syntax(graph_client: httpx.Client) -> None:
    """`/users('$admin@contoso.com')` addresses a UPN that starts with `$`."""
    response = graph_client.get(f"/users('{DOLLAR_UPN}')", params={"$select": "userPrincipalName"})
    assert response.json()["userPrincipalName"] == DOLLAR_UPN


def test_a_quote_in_the_key_syntax_is_doubled(graph_client: httpx.Client) -> None:
    """Inside `('...')` a quote is written `''`, and `%27` is a quote too."""
    doubled = QUOTE_UPN.replace("'", "''")
    for path in (f"/users('{doubled}')", f"/users(%27{quote(doubled)}%27)"):
        response = graph_client.get(path, params={"$select": "userPrincipalName"})
        assert response.json()["userPrincipalName"] == QUOTE_UPN


def test_an_unknown_user_is_graphs_404(graph_client: httpx.Client) -> None:
    """The 404 carries Graph's code, exact message and innerError shape."""
    response = graph_client.get("/users/nobody@contoso.com", headers={"client-request-id": "c-1"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert error["message"] == (
        "Resource 'nobody@contoso.com' does not exist or one of its queried "
        "reference-property objects are not present."
    )
    inner = error["innerError"]
    assert inner["client-request-id"] == "c-1"
    assert inner["request-id"] == response.headers["request-id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])  # no offset


def test_every_answer_carries_request_ids_and_json(graph_client: httpx.Client) -> None:
    """request-id is a fresh uuid; client-request-id is echoed; the type is JSON."""
    response = graph_client.get(f"/users/{JANE_ID}", headers={"client-request-id": "abc"})
    uuid.UUID(response.headers["request-id"])
    assert response.headers["client-request-id"] == "abc"
    assert response.headers["content-type"].startswith("application/json")


# ------------------------------------------------------------------ $filter


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("employeeId eq '000123'", [JANE_UPN]),
        ("onPremisesImmutableId eq 'aGVsbG8gd29ybGQ='", [JANE_UPN]),
        (f"userPrincipalName eq '{JANE_UPN.upper()}'", [JANE_UPN]),
        ("employeeId in ('000123', '000200')", [JANE_UPN, "alice@contoso.com"]),
        ("employeeId eq 'nobody'", []),
        (f"employeeId eq {quote_literal(HOSTILE_EMPLOYEE_ID)}", [QUOTE_UPN]),
        (f"userPrincipalName eq {quote_literal(QUOTE_UPN)}", [QUOTE_UPN]),
    ],
)
def test_filters_match_users(graph_client: httpx.Client, filter_: str, expected: list[str]) -> None:
    """eq and in match case-insensitively; an escaped hostile value is only a literal."""
    response = users_matching(graph_client, filter_)
    assert response.status_code == 200
    assert [u["userPrincipalName"] for u in response.json()["value"]] == expected


def test_a_filtered_list_has_graphs_collection_envelope(graph_client: httpx.Client) -> None:
    """The body is `{"@odata.context", "value"}` and values honour $select."""
    body = users_matching(graph_client, "employeeId eq '000123'").json()
    assert set(body) == {"@odata.context", "value"}
    assert body["@odata.context"].endswith("$metadata#users(id,userPrincipalName)")
    assert set(body["value"][0]) == {"id", "userPrincipalName"}


def test_in_accepts_fifteen_values_and_refuses_sixteen(graph_client: httpx.Client) -> None:
    """Graph's limit on `in` is 15 values; the 16th is Request_UnsupportedQuery."""
    values = ["000123", *[f"e{i}" for i in range(14)]]
    ok = users_matching(graph_client, f"employeeId in ({','.join(map(quote_literal, values))})")
    assert ok.status_code == 200
    assert len(ok.json()["value"]) == 1
    too_many = [*values, "e99"]
    refused = users_matching(
        graph_client, f"employeeId in ({','.join(map(quote_literal, too_many))})"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert "Max allowed: 15" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("filter_", "code"),
    [
        (f"employeeId eq '{HOSTILE_EMPLOYEE_ID}'", "Request_UnsupportedQuery"),
        ("employeeId eq 'unterminated", "BadRequest"),
        ("employeeId eq 'a' garbage", "BadRequest"),
        ("employeeId eq 'a' or employeeId eq 'b'", "Request_UnsupportedQuery"),
        ("startswith(userPrincipalName,'a')", "Request_UnsupportedQuery"),
        ("displayName eq 'Jane Doe'", "Request_UnsupportedQuery"),
        ("employeeId ne 'a'", "Request_UnsupportedQuery"),
        ("favouriteColour eq 'blue'", "BadRequest"),
        ("employeeId eq 123", "BadRequest"),
        ("employeeId in ()", "BadRequest"),
        ("employeeId in ('a' 'b')", "BadRequest"),
        ("", "BadRequest"),
    ],
)
def test_filters_outside_the_supported_grammar_are_400(
    graph_client: httpx.Client, filter_: str, code: str
) -> None:
    """Unescaped quotes, syntax errors and unsupported clauses are refused, never guessed."""
    response = users_matching(graph_client, filter_)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_an_unescaped_hostile_value_names_the_parse_problem(graph_client: httpx.Client) -> None:
    """A syntax error's message is Graph-like: 'Invalid filter clause: ...'."""
    response = users_matching(graph_client, "employeeId eq 'o'brien'")
    assert response.json()["error"]["message"].startswith("Invalid filter clause:")


def test_a_plus_in_a_filter_value_must_be_percent_encoded(graph_client: httpx.Client) -> None:
    """Like Graph, a raw `+` in the query string decodes to a space."""
    response = graph_client.get(
        "/users?$filter=employeeId+eq+'000123'&$select=id", headers={"client-request-id": "plus"}
    )
    assert [u["id"] for u in response.json()["value"]] == [JANE_ID]


# --------------------------------------------------------------- SKUs, auth


def test_subscribed_skus_show_seats_and_plans(graph_client: httpx.Client) -> None:
    """Each SKU has Graph's fields, with prepaidUnits and servicePlans."""
    body = graph_client.get("/subscribedSkus").json()
    mcoev = next(s for s in body["value"] if s["skuId"] == MCOEV_SKU)
    assert mcoev["skuPartNumber"] == "MCOEV"
    assert mcoev["prepaidUnits"] == {"enabled": 5, "suspended": 0, "warning": 0, "lockedOut": 0}
    assert mcoev["consumedUnits"] == 0
    assert mcoev["servicePlans"][0]["servicePlanName"] == "MCOEV"
    assert {"appliesTo", "capabilityStatus", "accountId", "accountName", "id"} <= set(mcoev)


def test_subscribed_skus_honour_select_and_refuse_other_options(graph_client: httpx.Client) -> None:
    """Only $select is supported on subscribedSkus."""
    body = graph_client.get("/subscribedSkus", params={"$select": "skuId,consumedUnits"}).json()
    assert all(set(s) == {"skuId", "consumedUnits"} for s in body["value"])
    refused = graph_client.get("/subscribedSkus", params={"$filter": "skuId eq 'x'"})
    assert refused.status_code == 400


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Access token is empty."),
        ("Bearer wrong-token", "Access token validation failure. Invalid audience."),
        ("Basic bG9jYWw6dG9rZW4=", "Access token validation failure. Invalid audience."),
    ],
)
def test_graph_calls_without_the_token_are_401(
    graph_emulator: Emulator, authorization: str | None, message: str
) -> None:
    """Missing or wrong tokens get InvalidAuthenticationToken; the control API needs none."""
    headers = {} if authorization is None else {"Authorization": authorization}
    with httpx.Client(headers=headers) as client:
        response = client.get(f"{graph_emulator.base_url}/users/{JANE_ID}")
        assert response.status_code == 401
        assert response.json()["error"] == {
            **response.json()["error"],
            "code": "InvalidAuthenticationToken",
            "message": message,
        }
        assert client.get(f"{graph_emulator.control_url}/health").status_code == 200


@pytest.mark.graph_invalid_requests
def test_an_unknown_segment_is_graphs_400(graph_client: httpx.Client) -> None:
    """Paths outside the emulated API answer like Graph does for unknown segments."""
    response = graph_client.get("/groups")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Resource not found for the segment 'groups'."
