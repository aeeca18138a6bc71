"""The tenant as the app sees it: users, lookups, SKUs and license assignments. Plain
data, built by the Graph adapter (`shared.adapters.graph`) and by the tests' fakes, read by the
workflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.domain.codes import ForcedSyncStatus
from shared.domain.errors import GraphError


@dataclass(frozen=True)
class DirectoryUser:
    """The fields of an Entra ID user the app decides on."""

    id: str
    user_principal_name: str
    sync_enabled: bool | None
    usage_location: str | None
    assigned_sku_ids: frozenset[str] = frozenset()
    # Group-based licensing's outcome per SKU (read with $select=licenseAssignmentStates).
    license_states: tuple[LicenseState, ...] = ()
    # The plans left off in each directly assigned SKU (skuId -> servicePlanIds, lower
    # case), from `assignedLicenses[].disabledPlans`: what the Teams Phone step's
    # prerequisite check reads (is Phone System really on?).
    disabled_plans: Mapping[str, frozenset[str]] = field(default_factory=dict, compare=False)

    @property
    def synced(self) -> bool:
        """Synced from AD now: `onPremisesSyncEnabled` is true (null/false mean not yet)."""
        return self.sync_enabled is True


@dataclass(frozen=True)
class LicenseState:
    """One `licenseAssignmentStates` entry: how Entra processed a SKU for the user.
    `state`: Active | ActiveWithError | Disabled | Error; `error`: None | CountViolation |
    MutuallyExclusiveViolation | DependencyViolation | ProhibitedInUsageLocationViolation |
    UniquenessViolation | Other (docs/graph-facts.md, "Group-based licensing")."""

    sku_id: str
    assigned_by_group: str | None
    state: str
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ("Active", "ActiveWithError")


@dataclass(frozen=True)
class Found:
    user: DirectoryUser


@dataclass(frozen=True)
class NotFound:
    pass


@dataclass(frozen=True)
class Ambiguous:
    """An employeeId or immutableId matched several users."""

    field: str
    count: int


@dataclass(frozen=True)
class LookupFailed:
    """Graph did not answer the lookup: what that means is `workflow.after_graph_error`'s call."""

    error: GraphError


Lookup = Found | NotFound | Ambiguous | LookupFailed


@dataclass(frozen=True)
class ServicePlan:
    id: str
    name: str


@dataclass(frozen=True)
class Sku:
    id: str
    part_number: str
    applies_to: str
    capability_status: str
    enabled_units: int
    consumed_units: int
    service_plans: tuple[ServicePlan, ...] = ()

    @property
    def free_units(self) -> int:
        return self.enabled_units - self.consumed_units

    @property
    def assignable_to_users(self) -> bool:
        """Only SKUs that apply to users and are enabled can be assigned
        (docs/graph-facts.md, "SKUs")."""
        return self.applies_to.lower() == "user" and self.capability_status == "Enabled"


@dataclass(frozen=True)
class SkuCatalog:
    """The tenant's `subscribedSkus`, looked up by skuPartNumber (case-insensitive)."""

    skus: tuple[Sku, ...]
    by_part_number: dict[str, Sku] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "by_part_number", {sku.part_number.upper(): sku for sku in self.skus}
        )

    def find(self, part_number: str) -> Sku | None:
        return self.by_part_number.get(part_number.upper())


@dataclass(frozen=True)
class LicenseAssignment:
    sku_id: str
    disabled_plan_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CloudSyncJob:
    """The Entra Cloud Sync provisioning job that can sync one user on demand
    (`CLOUD_SYNC_JOB`: `<servicePrincipalId>/<jobId>`)."""

    service_principal_id: str
    job_id: str


@dataclass(frozen=True)
class ForcedSyncResult:
    """What Graph said of one provisionOnDemand: the request's `data.forcedSync`."""

    status: ForcedSyncStatus
    message: str
