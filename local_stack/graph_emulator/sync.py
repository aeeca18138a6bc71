"""Microsoft Entra Cloud Sync as Graph shows it: jobs, their schema, and provisionOnDemand.

Pure data and wire shapes, no tenant state (the `Directory` owns the users and
calls these). Sources:

- Job ids look like `AD2AADProvisioning.<32 hex>` (entra-docs
  cloud-sync/concept-attributes.md) or `AD2AADProvisioning.<32 hex>.<guid>`
  (a real Cloud Sync schema: powershellgallery.com Use-AzureAD 1.7,
  sample/Azure_Cloud_Provisionning-Sample2.json); the template is
  `AD2AADProvisioning`; real jobs run every `PT2M` (their `schedule.interval`,
  concept-attributes.md).
- The schema's rule: `{"editable": true, "id": "6c409270-...", "name":
  "AD2AADProvisioning", "priority": 1, "sourceDirectoryName": "Active
  Directory", "targetDirectoryName": "Azure Active Directory", "metadata": [...],
  ...}` (the same Use-AzureAD sample); its `objectMappings` are the
  synchronizationRule / objectMapping resources' documented shape with a
  minimal, invented set of attribute mappings (not verified).
- provisionOnDemand: request, 200 `stringKeyStringValuePair` whose `key` and
  `value` are JSON strings, the step names, the `@odata.context`, the
  timestamps with 7 fractional digits: Example 2 of
  learn.microsoft.com/graph/api/synchronization-synchronizationjob-provisionondemand
  (microsoft-graph-docs-contrib). "The rate limit for this API is 5 requests
  per 10 seconds." (same page); what Graph answers over it is not documented.
- A rule the job does not have: 400 `RequestParameterInvalid`, message as
  observed in microsoft-graph-docs-contrib#4247 (two spaces after each period).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import DirectoryFormatError, GraphRefusal, selected_properties

DEFAULT_TEMPLATE = "AD2AADProvisioning"
DEFAULT_ON_DEMAND_DELAY = 3.0
ON_DEMAND_LIMIT = 5  # requests per job ...
ON_DEMAND_WINDOW_SECONDS = 10.0  # ... per 10 seconds (the provisionOnDemand page)
SOURCE_DIRECTORY = "Active Directory"
TARGET_DIRECTORY = "Azure Active Directory"
#: Example 2's context: the answer comes from the provisioning service, not graph.microsoft.com.
ON_DEMAND_CONTEXT = (
    "https://syncfabric.windowsazure.com/api/$metadata#microsoft.synchronization."
    "stringKeyStringValuePair"
)
SCHEMA_PROPERTIES = ("id", "synchronizationRules", "version", "directories")
SYNC_KEYS = frozenset({"jobs", "cycleSeconds", "onDemandDelaySeconds"})
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class SyncJob:
    """One Cloud Sync job: its service principal, id, AD-to-Entra rule and template."""

    service_principal_id: str
    job_id: str
    rule_id: str
    template_id: str = DEFAULT_TEMPLATE

    def to_json(self) -> dict[str, str]:
        """The job as the directory file and the control API spell it."""
        return {
            "servicePrincipalId": self.service_principal_id,
            "jobId": self.job_id,
            "ruleId": self.rule_id,
            "templateId": self.template_id,
        }


@dataclass
class SyncSettings:
    """The file's `synchronization` section, parsed."""

    jobs: list[SyncJob] = field(default_factory=list)
    cycle_seconds: float = 0.0  # 0 = no regular cycle
    on_demand_delay: float = DEFAULT_ON_DEMAND_DELAY


def non_negative(value: Any, what: str) -> float:
    """A number >= 0 (not a bool), or DirectoryFormatError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise DirectoryFormatError(f"{what} must be a non-negative number")
    return float(value)


def parse_settings(spec: Any) -> SyncSettings:
    """Validate the `synchronization` section (absent = no jobs, no cycle)."""
    if spec is None:
        return SyncSettings()
    if not isinstance(spec, Mapping):
        raise DirectoryFormatError("synchronization must be an object")
    unknown = set(spec) - SYNC_KEYS
    if unknown:
        raise DirectoryFormatError(f"synchronization: unknown keys {sorted(unknown)}")
    jobs_spec = spec.get("jobs", [])
    if not isinstance(jobs_spec, list):
        raise DirectoryFormatError("synchronization.jobs must be a list")
    jobs = [_parse_job(j) for j in jobs_spec]
    seen: set[tuple[str, str]] = set()
    for job in jobs:
        key = (job.service_principal_id.lower(), job.job_id.lower())
        if key in seen:
            raise DirectoryFormatError(f"duplicate synchronization job {job.job_id}")
        seen.add(key)
    return SyncSettings(
        jobs=jobs,
        cycle_seconds=non_negative(spec.get("cycleSeconds", 0), "cycleSeconds"),
        on_demand_delay=non_negative(
            spec.get("onDemandDelaySeconds", DEFAULT_ON_DEMAND_DELAY), "onDemandDelaySeconds"
        ),
    )


def _parse_job(spec: Any) -> SyncJob:
    if not isinstance(spec, Mapping):
        raise DirectoryFormatError("each synchronization job must be an object")
    unknown = set(spec) - {"servicePrincipalId", "jobId", "ruleId", "templateId"}
    if unknown:
        raise DirectoryFormatError(f"synchronization job: unknown keys {sorted(unknown)}")
    sp_id = spec.get("servicePrincipalId")
    if not isinstance(sp_id, str) or not _GUID_RE.match(sp_id):
        raise DirectoryFormatError(f"servicePrincipalId must be a GUID, got {sp_id!r}")
    template = spec.get("templateId", DEFAULT_TEMPLATE)
    if not isinstance(template, str) or not template:
        raise DirectoryFormatError("templateId must be a non-empty string")
    job_id = spec.get("jobId")
    # <template>.<32 hex>[.<suffix>]: a GUID here is the docs' illustrative id, not a real one.
    pattern = re.escape(template) + r"\.[0-9a-fA-F]{32}(\.[0-9A-Za-z-]+)?"
    if not isinstance(job_id, str) or not re.fullmatch(pattern, job_id):
        raise DirectoryFormatError(
            f"jobId must look like {template}.<32 hex digits>[.<suffix>], got {job_id!r}"
        )
    rule_id = spec.get("ruleId")
    if not isinstance(rule_id, str) or not rule_id:
        raise DirectoryFormatError("ruleId must be a non-empty string")
    return SyncJob(sp_id.lower(), job_id, rule_id, template)


def normalize_dn(dn: str) -> str:
    """Compare distinguished names as AD does: case-insensitively, ignoring spaces at commas."""
    return ",".join(part.strip() for part in dn.split(",")).casefold()


def precise(seconds: float) -> str:
    """Sync-service timestamps: 7 fractional digits and `Z` (`2022-04-21T18:40:07.8465145Z`)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    ticks = round((seconds - math.floor(seconds)) * 10_000_000) % 10_000_000
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ticks:07d}Z"


# ---------------------------------------------------------------------------- schema


def schema_body(job: SyncJob, context: str, loaded_at: float) -> dict[str, Any]:
    """`GET .../jobs/{id}/schema`: the job's AD-to-Entra rule and the two directories."""
    version_date = precise(loaded_at)
    activity = uuid.uuid5(uuid.NAMESPACE_URL, f"schema:{job.job_id}:{loaded_at}")
    return {
        "@odata.context": context,
        "id": job.job_id,
        # The real sample's version format ("Date:<timestamp>, ActivityId:<guid>").
        "version": f"Date:{version_date}, ActivityId:{activity}",
        "synchronizationRules": [
            {
                "editable": True,
                "id": job.rule_id,
                "name": job.template_id,
                "priority": 1,
                "sourceDirectoryName": SOURCE_DIRECTORY,
                "targetDirectoryName": TARGET_DIRECTORY,
                "metadata": [],
                "objectMappings": [_user_mapping()],
            }
        ],
        "directories": [
            _directory("Active Directory", "user", ["userPrincipalName", "distinguishedName"]),
            _directory("Azure Active Directory", "User", ["userPrincipalName", "usageLocation"]),
        ],
    }


def _user_mapping() -> dict[str, Any]:
    """One user object mapping (the objectMapping resource's shape; mappings not verified)."""

    def attribute(source: str, target: str, matching: int = 0) -> dict[str, Any]:
        return {
            "defaultValue": None,
            "exportMissingReferences": False,
            "flowBehavior": "FlowWhenChanged",
            "flowType": "Always",
            "matchingPriority": matching,
            "source": {
                "expression": f"[{source}]",
                "name": source,
                "parameters": [],
                "type": "Attribute",
            },
            "targetAttributeName": target,
        }

    return {
        "enabled": True,
        "flowTypes": "Add, Update, Delete",
        "metadata": [],
        "name": "Provision Active Directory users",
        "scope": None,
        "sourceObjectName": "user",
        "targetObjectName": "User",
        "attributeMappings": [
            attribute("objectGUID", "SourceAnchorBinary", matching=1),
            attribute("userPrincipalName", "UserPrincipalName"),
            attribute("displayName", "DisplayName"),
            attribute("distinguishedName", "OnPremisesDistinguishedName"),
        ],
    }


def _directory(name: str, object_name: str, attributes: list[str]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"directory:{name}")),
        "name": name,
        "objects": [
            {
                "name": object_name,
                "attributes": [
                    {"name": a, "type": "String", "anchor": False, "multivalued": False}
                    for a in attributes
                ],
                "metadata": [],
                "supportedApis": [],
            }
        ],
    }


def select_schema(body: dict[str, Any], raw: str | None) -> dict[str, Any]:
    """Apply `$select` (the excerpt's enum, case-insensitive); an unknown name is a 400."""
    if raw is None:
        return body
    chosen = selected_properties(raw, SCHEMA_PROPERTIES, "synchronizationSchema")
    return {"@odata.context": body["@odata.context"], **{p: body[p] for p in chosen}}


# ------------------------------------------------------------------ provisionOnDemand


@dataclass(frozen=True)
class OnDemandSubject:
    """The one subject of a provisionOnDemand call the emulator accepts."""

    rule_id: str
    object_id: str
    object_type: str


def _missing_parameters() -> GraphRefusal:
    # OData's wording for a missing action parameter (as Graph says for assignLicense);
    # what the sync service says for an empty provisionOnDemand body is not verified.
    return GraphRefusal(
        400,
        "BadRequest",
        "One or more parameters of the operation 'provisionOnDemand' are missing from the "
        "request payload. The missing parameters are: parameters.",
    )


def parse_on_demand(body: Any) -> OnDemandSubject:
    """`{"parameters": [{"ruleId", "subjects": [{"objectId", "objectTypeName"}]}]}`, one subject.

    Several parameters or subjects, groups, and `links` are refused: the emulator
    provisions one AD user per call (Graph's answer for more is one pair too, and
    what it reports for several subjects is not documented).
    """
    if not isinstance(body, dict) or not body.get("parameters"):
        raise _missing_parameters()
    parameters = body["parameters"]
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        raise GraphRefusal(400, "BadRequest", "Invalid value specified for property 'parameters'.")
    if len(parameters) != 1:
        raise GraphRefusal(
            400,
            "BadRequest",
            "The emulator provisions one subject per call: send exactly one parameters entry.",
        )
    parameter = parameters[0]
    rule_id = parameter.get("ruleId")
    subjects = parameter.get("subjects")
    if not isinstance(rule_id, str):
        rule_id = ""  # Graph names an empty rule in its RequestParameterInvalid message
    if (
        not isinstance(subjects, list)
        or len(subjects) != 1
        or not isinstance(subjects[0], dict)
        or not isinstance(subjects[0].get("objectId"), str)
        or not isinstance(subjects[0].get("objectTypeName"), str)
    ):
        raise GraphRefusal(
            400,
            "BadRequest",
            "Invalid value specified for property 'subjects': the emulator expects exactly one "
            "subject with string 'objectId' and 'objectTypeName'.",
        )
    subject = subjects[0]
    if subject["objectTypeName"] != "user" or subject.get("links"):
        raise GraphRefusal(
            400,
            "BadRequest",
            "The emulator provisions AD users only: objectTypeName must be 'user' (Graph's "
            "value for Active Directory to Microsoft Entra ID), without links.",
        )
    return OnDemandSubject(rule_id, subject["objectId"], subject["objectTypeName"])


def rule_not_in_job(job: SyncJob, rule_id: str) -> GraphRefusal:
    """Observed (microsoft-graph-docs-contrib#4247): 400 RequestParameterInvalid."""
    return GraphRefusal(
        400,
        "RequestParameterInvalid",
        f"The request identified this synchronization job: {job.job_id}.  The request also "
        f"identified this synchronization rule: {rule_id}.  However, the job does not include "
        "the rule.",
    )


def _step(
    name: str, kind: str, status: str, description: str, at: float, details: dict[str, str]
) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "status": status,
        "description": description,
        "timestamp": precise(at),
        "details": details,
    }


def _pair(key: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    return {
        "@odata.context": ON_DEMAND_CONTEXT,
        "key": json.dumps(key, separators=(",", ":")),
        "value": json.dumps(value, separators=(",", ":")),
    }


def on_demand_success(
    user: Mapping[str, Any], dn: str, *, created: bool, now: float
) -> dict[str, Any]:
    """Example 2's answer: four steps, then Create (a new cloud user) or Update."""
    upn = str(user.get("userPrincipalName") or "")
    display = str(user.get("displayName") or "")
    ad = {"distinguishedName": dn, "userPrincipalName": upn, "displayName": display}
    export = (
        _step(
            "EntryExportAdd",
            "Export",
            "Success",
            f"User '{upn}' was created in Azure Active Directory",
            now + 0.9,
            {},
        )
        if created
        else _step(
            "EntryExportUpdate",
            "Export",
            "Success",
            f"User '{upn}' was updated in Azure Active Directory",
            now + 0.9,
            {},
        )
    )
    value = {
        "provisioningSteps": [
            _step(
                "EntryImportAdd",
                "Import",
                "Success",
                f"Received user '{upn}' change of type (Add) from Active Directory",
                now,
                ad,
            ),
            _step(
                "EntryImport",
                "Import",
                "Success",
                f"Retrieved user '{upn}' from Active Directory",
                now + 0.03,
                ad,
            ),
            _step(
                "EntrySynchronizationScoping",
                "Scoping",
                "Success",
                "Determine if user in scope by evaluating against each scoping filter",
                now + 0.3,
                {"Active in the source system": "True", "Scoping filter evaluation passed": "True"},
            ),
            export,
        ],
        "modifiedProperties": [
            {"displayName": "DisplayName", "newValue": display},
            {"displayName": "OnPremisesDistinguishedName", "newValue": dn},
            {"displayName": "UserPrincipalName", "newValue": upn},
        ],
        "action": "Create" if created else "Update",
        "changeId": str(uuid.uuid4()),
        "endTime": precise(now + 0.95),
        "reportableIdentifier": upn,
        "sourceIdentity": {"id": ad_object_guid(dn), "type": "user"},
        "sourceSystem": {"name": SOURCE_DIRECTORY},
        "startTime": precise(now),
        "statusInfo": {"status": "Success"},
        "targetIdentity": {"id": str(user["id"]), "type": "User"},
        "targetSystem": {"name": TARGET_DIRECTORY},
    }
    return _pair({"result": "Success", "details": {}}, value)


#: Not verified: no documented example has a failure; code and wording are the emulator's.
NOT_FOUND_CODE = "ObjectNotFound"


def on_demand_failure(dn: str, *, now: float) -> dict[str, Any]:
    """A DN that matches no AD user: `result` Failure, an import step that failed."""
    message = f"The object '{dn}' could not be found in Active Directory."
    value = {
        "provisioningSteps": [
            _step(
                "EntryImport",
                "Import",
                "Failure",
                f"Could not retrieve user '{dn}' from Active Directory",
                now,
                {},
            )
        ],
        "modifiedProperties": [],
        "action": "Other",
        "changeId": str(uuid.uuid4()),
        "endTime": precise(now + 0.2),
        "reportableIdentifier": dn,
        "sourceIdentity": {"id": None, "type": "user", "displayName": None, "details": None},
        "sourceSystem": {"id": None, "name": SOURCE_DIRECTORY, "details": None},
        "startTime": precise(now),
        # Example 1's statusInfo keys, with provisioningErrorInfo's values for a failure.
        "statusInfo": {
            "status": "Failure",
            "errorCode": NOT_FOUND_CODE,
            "reason": message,
            "additionalDetails": None,
            "errorCategory": "NonServiceFailure",
            "recommendedAction": "Check the distinguished name of the user in Active Directory.",
        },
        "targetIdentity": {"id": None, "type": "User", "displayName": None, "details": None},
        "targetSystem": {"id": None, "name": TARGET_DIRECTORY, "details": None},
    }
    details = {"errorCode": NOT_FOUND_CODE, "errorMessage": message}
    return _pair({"result": "Failure", "details": details}, value)


def ad_object_guid(dn: str) -> str:
    """A stable stand-in for the AD objectGUID of a DN (the emulator has no AD)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "ad:" + normalize_dn(dn)))


class OnDemandLimiter:
    """5 provisionOnDemand calls per 10 s per job, as a sliding window of accepted calls.

    Graph documents the limit, not its answer: the emulator refuses the 6th call with
    429 `TooManyRequests` and a `Retry-After` (whole seconds until the oldest call in the
    window is 10 s old); refused calls do not count. Not verified against live Graph.
    """

    def __init__(self) -> None:
        self._calls: dict[str, deque[float]] = {}

    def admit(self, job_id: str, now: float) -> None:
        """Count one call for `job_id`, or raise the 429."""
        calls = self._calls.setdefault(job_id.lower(), deque())
        while calls and calls[0] <= now - ON_DEMAND_WINDOW_SECONDS:
            calls.popleft()
        if len(calls) >= ON_DEMAND_LIMIT:
            wait = max(1, math.ceil(calls[0] + ON_DEMAND_WINDOW_SECONDS - now))
            raise GraphRefusal(
                429, "TooManyRequests", "Please retry again later.", {"Retry-After": str(wait)}
            )
        calls.append(now)
