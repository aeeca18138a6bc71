"""Graph's answers read as the app's data (`shared.domain.tenant`): users, lookups,
`$batch` items (paired by id: Graph does not promise their order), the SKU catalog, the
Cloud Sync rule and provisionOnDemand's reply. An answer of the wrong shape is a
`MalformedResponse`, transient like an outage."""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.graph.probes import Probe
from shared.adapters.graph.translate import classify, malformed
from shared.domain.codes import ForcedSyncStatus
from shared.domain.errors import GraphCall, GraphError, GraphErrorKind
from shared.domain.tenant import (
    Ambiguous,
    DirectoryUser,
    ForcedSyncResult,
    Found,
    LicenseState,
    Lookup,
    LookupFailed,
    NotFound,
    ServicePlan,
    Sku,
    SkuCatalog,
)

BatchItem = tuple[int, dict[str, str], Any]  # status, headers (lower-case), body


def user_of(body: Any) -> DirectoryUser:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise malformed("user")
    licenses = body.get("assignedLicenses") or []
    sync = body.get("onPremisesSyncEnabled")
    states = body.get("licenseAssignmentStates") or []
    if not isinstance(licenses, list) or sync not in (True, False, None):
        raise malformed("user")
    if not isinstance(states, list):
        raise malformed("user")
    return DirectoryUser(
        id=body["id"],
        user_principal_name=str(body.get("userPrincipalName") or ""),
        sync_enabled=sync,
        usage_location=body.get("usageLocation") or None,
        assigned_sku_ids=frozenset(
            str(item.get("skuId", "")).lower() for item in licenses if isinstance(item, dict)
        ),
        license_states=tuple(_license_state(item) for item in states if isinstance(item, dict)),
        disabled_plans={
            str(item.get("skuId", "")).lower(): frozenset(
                str(plan).lower() for plan in item.get("disabledPlans") or () if plan
            )
            for item in licenses
            if isinstance(item, dict) and isinstance(item.get("disabledPlans") or [], list)
        },
    )


def _license_state(item: dict[str, Any]) -> LicenseState:
    group = item.get("assignedByGroup")
    return LicenseState(
        sku_id=str(item.get("skuId", "")).lower(),
        assigned_by_group=str(group).lower() if group else None,
        state=str(item.get("state") or ""),
        error=str(item["error"]) if item.get("error") else None,
    )


def lookup_result(probe: Probe, body: Any) -> Lookup:
    try:
        if probe.key:
            return Found(user_of(body))
        values = body.get("value") if isinstance(body, dict) else None
        if not isinstance(values, list):
            raise malformed("user list")
        if not values:
            return NotFound()
        if len(values) > 1:
            return Ambiguous(probe.field, len(values))
        return Found(user_of(values[0]))
    except GraphError as exc:
        return LookupFailed(exc)


def batch_items(answer: Any, expected: int) -> dict[str, BatchItem]:
    """Items by id: Graph does not promise the order of `responses`."""
    responses = answer.get("responses") if isinstance(answer, dict) else None
    if not isinstance(responses, list):
        raise malformed("$batch response")
    items: dict[str, BatchItem] = {}
    for item in responses:
        if isinstance(item, dict) and isinstance(item.get("status"), int):
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            items[str(item.get("id"))] = (item["status"], headers, item.get("body"))
    if len(items) != expected or any(str(n) not in items for n in range(expected)):
        raise malformed("$batch response")
    return items


def batch_item_result(probe: Probe, item: BatchItem) -> Lookup:
    status, headers, body = item
    if 200 <= status < 300:
        return lookup_result(probe, body)
    if status == 404 and probe.key:
        return NotFound()
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    inner = error.get("innerError")
    inner = inner if isinstance(inner, dict) else {}
    classified = classify(
        GraphCall.LOOKUP,
        status,
        str(error.get("code", "")),
        str(error.get("message", f"batch item answered {status}")),
        inner.get("request-id") or headers.get("request-id"),
        headers.get("retry-after"),
    )
    return LookupFailed(classified)


def catalog_of(body: Any) -> SkuCatalog:
    values = body.get("value") if isinstance(body, dict) else None
    if not isinstance(values, list):
        raise malformed("subscribedSkus list", GraphCall.SUBSCRIBED_SKUS)
    try:
        return SkuCatalog(tuple(_sku(item) for item in values))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise malformed("subscribedSkus entry", GraphCall.SUBSCRIBED_SKUS) from None


def _sku(item: Any) -> Sku:
    prepaid = item.get("prepaidUnits") or {}
    return Sku(
        id=str(item["skuId"]).lower(),
        part_number=str(item["skuPartNumber"]),
        applies_to=str(item.get("appliesTo") or ""),
        capability_status=str(item.get("capabilityStatus") or ""),
        enabled_units=int(prepaid.get("enabled") or 0),
        consumed_units=int(item.get("consumedUnits") or 0),
        service_plans=tuple(
            ServicePlan(str(p["servicePlanId"]).lower(), str(p["servicePlanName"]))
            for p in item.get("servicePlans") or []
        ),
    )


def ad_to_entra_rule(body: Any) -> str:
    """The job's rule from Active Directory to Entra ID (a Cloud Sync job has one)."""
    rules = body.get("synchronizationRules") if isinstance(body, dict) else None
    if not isinstance(rules, list):
        raise malformed("synchronization schema", GraphCall.SYNC_SCHEMA)
    usable = [r for r in rules if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"]]
    for rule in usable:
        source = str(rule.get("sourceDirectoryName") or "").lower()
        target = str(rule.get("targetDirectoryName") or "").lower()
        if source == "active directory" and target != source:
            return str(rule["id"])
    if usable:
        return str(usable[0]["id"])
    raise GraphError(
        "the synchronization job's schema has no rule",
        kind=GraphErrorKind.REJECTED,
        call=GraphCall.SYNC_SCHEMA,
        code="NoSynchronizationRule",
    )


def forced_sync_result(body: Any) -> ForcedSyncResult:
    """provisionOnDemand's reply: `key` and `value` are JSON documents held in strings;
    `key.result` is Success, Failure or Skipped, with `details.errorCode/errorMessage`."""
    try:
        key = json.loads(body["key"])
        result = str(key.get("result") or "")
        details = key.get("details") or {}
    except (KeyError, TypeError, ValueError, AttributeError):
        return ForcedSyncResult(ForcedSyncStatus.FAILED, "Graph's reply could not be read")
    if result.lower() == "success":
        return ForcedSyncResult(ForcedSyncStatus.REQUESTED, "Cloud Sync provisioned the user")
    code = str(details.get("errorCode") or "") if isinstance(details, dict) else ""
    why = str(details.get("errorMessage") or "") if isinstance(details, dict) else ""
    message = f"Cloud Sync answered {result or 'no result'}" + (
        f" ({code}: {why})" if code or why else ""
    )
    return ForcedSyncResult(ForcedSyncStatus.FAILED, message[:500])
