"""A local Microsoft Graph v1.0 emulator for the calls the onboarding app makes.

There is no Graph (and no internet) in development or CI, so this standard
library HTTP server answers `GET /users/{id|upn}`, `GET /users?$filter=`,
`PATCH /users/{id}`, `POST /users/{id}/assignLicense`,
`POST /users/{id}/reprocessLicenseAssignment`, `GET /subscribedSkus`,
`POST /groups/{id}/members/$ref`,
`GET /servicePrincipals/{sp}/synchronization/jobs/{job}/schema`,
`POST /servicePrincipals/{sp}/synchronization/jobs/{job}/provisionOnDemand`,
Teams Phone's `GET /admin/teams/userConfigurations/{userId}`,
`GET /admin/teams/telephoneNumberManagement/numberAssignments[/{id}]`,
`POST .../numberAssignments/assignNumber` and `GET .../operations/{id}` (see
`teams`, `teams_api`), and `POST /$batch` with Graph's wire format, status
codes and error bodies, and its responses validate against
`docs/graph/graph-v1.0-excerpt.openapi.yaml` (see `openapi_check`). It binds
to 127.0.0.1 only.

Two Entra processes run on the emulator's clock (a `ManualClock` in tests):
Cloud Sync (users `awaitingSync` exist in AD only, and appear in Entra,
synced, at the next regular cycle or `onDemandDelaySeconds` after a
provisionOnDemand naming their DN; see `sync`) and group-based licensing
(`groupLicenseDelaySeconds` after a member add, a reprocess or a change of a
group's licenses, each license of the group becomes `Active` or `Error` in the
user's `licenseAssignmentStates`; see `licensing`). Teams runs on the same
clock: it sees a Teams service plan `provisioningDelaySeconds` after the plan
reached the user, and decides assignNumber orders when they are due (see
`teams`, `teams_orders`; facts and sources in `docs/teams-phone.md`).

Start it in-process::

    with start_emulator(directory_dict_or_path, clock=ManualClock()) as graph:
        graph.base_url      # http://127.0.0.1:PORT/v1.0
        graph.control_url   # http://127.0.0.1:PORT/_emulator

or as a process: `python -m local_stack.graph_emulator --directory FILE --port N
[--host 127.0.0.1] [--token T] [--ready-file PATH] [--units-per-10s N]
[--writes-per-150s N] [--time-scale S] [--throttle-model window|bucket]
[--fault-seed N] [--no-shuffle-batch] [--manual-clock]`,
which prints `graph-emulator listening on <base_url>` once ready.

Graph calls need `Authorization: Bearer local-graph-emulator-token` (or the
`token` given at start). Each call goes through: token (401), injected faults,
route, permissions (403), throttling (429), then the tenant's rules, including
replication lag; `$batch` items go through the same pipeline one by one and
the batch's `responses` come back shuffled (see `service`).

`start_emulator` / `Emulator` options: `token`, `clock`, `units_per_10s`
(3500), `writes_per_150s` (3000), `fault_seed` (seeds fault rates and the
batch shuffle), `shuffle_batch` (True), `time_scale` (1: throttling windows and
Retry-After S times shorter), `throttle_model` (`window`, or Graph's documented
token `bucket`; see `throttle`). In-process helpers on `Emulator`:
`add_user`, `sync_user`, `user_record`, `requests`, `clear_requests`,
`add_fault`, `clear_faults`, `set_seats`, `set_throttle`, `advance_clock`,
`reset`, `set_consistency(write_not_found=None, usage_location_lag=None,
key_lookup_lag=None)`, `set_user_lag(key, write_not_found=None,
usage_location_lag=None, key_lookup_lag=None)`, `permissions()`,
`set_permissions(granted | None)`, `grant(name)`, `revoke(name)`,
`set_batch_shuffle(bool)`; Cloud Sync: `sync_settings()`,
`set_sync(cycle_seconds=None, on_demand_delay_seconds=None)`,
`run_sync_cycle() -> [upn]`, `provision_on_demand_calls() -> [log entry]`
(users awaiting sync: `add_user({..., "awaitingSync": True})`); group licensing:
`add_group(spec)`, `group_record(group_id)`, `set_group_licenses(group_id,
[{"skuId", "disabledPlans"}])`, `set_group_license_delay(seconds)`,
`set_tenant_usage_location(code | None)`, `license_states(user_key)`; Teams
(`teams_control`): `add_teams_user(user, account_type=None,
provisioning_delay_seconds=None, enterprise_voice=None)`, `teams_user(key)`,
`move_to_teams(key, delay_seconds=None)`, `teams_settings()`,
`set_teams(provisioningDelaySeconds=..., moveDelaySeconds=...,
operationStartSeconds=..., operationRunSeconds=..., readsPerSecond=...,
writesPerSecond=...)`, `teams_numbers()`, `teams_number(number)`,
`add_teams_number(spec)`, `fail_next_teams_operation(status_detail=None,
count=1)`, `teams_operations()`.

Directory file (JSON)
---------------------
::

    {
      "skus": [{
        "skuId": "<guid>",            # generated when omitted
        "skuPartNumber": "MCOEV",     # required; also the key of PUT /_emulator/skus/{part}
        "enabled": 25,                # prepaidUnits.enabled
        "consumedUnits": 0,           # default: number of users holding the SKU in this file
        "suspended": 0, "warning": 0, "lockedOut": 0,
        "appliesTo": "User", "capabilityStatus": "Enabled",   # not Enabled = no free seats
        "servicePlans": [{"servicePlanId": "<guid>", "servicePlanName": "MCOEV",
                          "provisioningStatus": "Success", "appliesTo": "User"}],
        "prohibitedUsageLocations": ["XX"]  # group licensing of a user located there:
                                      # Error ProhibitedInUsageLocationViolation
      }],
      "planRules": {                  # keyed by servicePlanName
        "mutuallyExclusive": [["PLAN_A", "PLAN_B"]],
        "prerequisites": {"MCOEV": ["TEAMS1", "MCOSTANDARD"]}   # needs ANY one of them
      },
      "permissions": ["User.Read.All", "User.ReadWrite.All",  # application permissions granted
                      "LicenseAssignment.ReadWrite.All"],     # to the app; absent or null = all
                                      # (names from permissions.KNOWN_PERMISSIONS, else an error)
      "consistency": {                # replication-lag defaults for every user in the file and
        "writeNotFound": 0,           # every user added later: the next N writes to the user
                                      # (PATCH, assignLicense, ...) are 404 and do nothing
        "usageLocationLag": 0,        # after a PATCH gives a user without one a usageLocation,
                                      # the next N assignLicense calls that add licenses are 400
                                      # "...invalid usage location." and do nothing
        "keyLookupLag": 0             # the next N GET /users/{id|upn} (or users('...')) are 404
      },                              # while $filter already finds the user
      "synchronization": {            # Entra Cloud Sync (absent = no jobs, no cycle)
        "jobs": [{"servicePrincipalId": "<guid>",
                  "jobId": "AD2AADProvisioning.<32 hex>[.<suffix>]",  # a GUID is refused
                  "ruleId": "<the AD-to-Entra rule id>",
                  "templateId": "AD2AADProvisioning"}],   # the default
        "cycleSeconds": 0,            # regular run every N s from the start/last reset (or the
                                      # last change of cycleSeconds); 0 = none (real: PT2M)
        "onDemandDelaySeconds": 3     # provisionOnDemand -> the user is synced N s later
      },
      "tenantUsageLocation": "FR",    # what group licensing gives users without a usageLocation
                                      # (absent: their group licenses are Error "Other")
      "groupLicenseDelaySeconds": 3,  # member add / reprocess / group licenses changed ->
                                      # the group's licenses are processed N s later
      "groups": [{                    # members listed here hold its licenses from the start
        "id": "<guid>",               # generated when omitted
        "displayName": "Licensing - Teams", "description": null,
        "securityEnabled": true,      # licenses need a security group
        "licenses": [{"skuId": "<guid>", "disabledPlans": ["<servicePlanId>"]}],
        "members": ["<userId or UPN>"]  # users visible at start
      }],
      "users": [{
        "id": "<guid>",               # generated when omitted
        "userPrincipalName": "jane.doe@contoso.com",           # required
        "displayName": "Jane Doe", "employeeId": "000123", "onPremisesImmutableId": "...",
        "onPremisesSyncEnabled": true, "usageLocation": null, "accountEnabled": true,
        ...any other property in directory.USER_PROPERTIES...,
        "assignedLicenses": [{"skuId": "<guid>", "disabledPlans": []}],  # direct licenses
        "groupLicenses": ["<skuId>"], # inherited from a group: shown in assignedLicenses,
                                      # uses a seat, cannot be removed directly
        "appearAfterSeconds": 3,      # 404 / absent from filters until then (Entra Connect
                                      # creating the cloud account)
        "syncAfterSeconds": 5,        # onPremisesSyncEnabled null, then true (with
                                      # onPremisesLastSyncDateTime) from then on
        "awaitingSync": true,         # in AD only: 404 / absent from filters until a sync
                                      # cycle or a provisionOnDemand of its DN, then synced
                                      # (excludes appearAfterSeconds and syncAfterSeconds)
        "onPremisesDistinguishedName": "CN=...,DC=...",  # what provisionOnDemand matches
        "lag": {"writeNotFound": 2},  # this user's counters; keys given replace "consistency"
        "teams": {"accountType": "sfbOnPremUser"}  # this user's Teams options, as in
                                      # teams.users below (without "user")
      }],
      "teams": {                      # Microsoft Teams' view (absent = no numbers, default delays)
        "provisioningDelaySeconds": 30,  # a Teams plan (TEAMS1, MCOEV, MCOMEETADV, MCOPSTN1/2)
                                      # enabled on a user shows in featureTypes N s later; the
                                      # configuration exists (GET 200, else 404) from the first.
                                      # Plans held when the user is loaded or added: at once
        "moveDelaySeconds": 0,        # an sfbOnPremUser moved (control API) is `user` N s later
        "operationStartSeconds": 1,   # an assignNumber order is notStarted for N s,
        "operationRunSeconds": 2,     # then running for N s, then decided (succeeded/failed)
        "users": [{                   # users Teams holds options for (must be in "users";
                                      # or the user entry's own "teams" key)
          "user": "<id or UPN>",
          "accountType": "sfbOnPremUser",   # known to Teams from the start with this type
                                      # (user, resourceAccount, guest, sfbOnPremUser, unknown,
                                      # ineligibleUser); absent: as the licenses say
          "provisioningDelaySeconds": 5,    # this user's delay
          "isEnterpriseVoiceEnabled": true
        }],
        "numberAssignments": [{       # the tenant's number inventory, numberAssignment keys
          "telephoneNumber": "+33155550100",  # '+' added when missing
          "numberType": "callingPlan",        # directRouting | callingPlan | operatorConnect
          "assignmentTargetId": "<user id or UPN, or another object's GUID>",  # absent: free
          "assignmentCategory": "primary", "assignmentStatus": "userAssigned",  # defaults
          "activationState": "activated", "capabilities": ["userAssignment"],   # by type
          "isoCountryCode": "FR", "city": null, "locationId": null, "civicAddressId": null,
          "networkSiteId": null, "operatorId": "<guid>", "numberSource": "online",
          "portInStatus": null, "supportedCustomerActions": ["locationUpdate"],
          "reverseNumberLookupOptions": []
        }]
      }
    }

Delays count from the start, the last reset, or the moment the user was added.

Local Entra ID issuer (`identity`, `identity_http`)
---------------------------------------------------
The same server answers Entra ID's v2.0 endpoints at Entra's paths under the
issuer base `Emulator.authority` (the base URL without `/v1.0`, what the app's
`API_AUTHORITY` points at): `POST /{tenant}/oauth2/v2.0/token` (client
credentials: `client_id` + `client_secret` in the form or HTTP Basic,
`scope=<API client id or identifier URI>/.default`; Entra's AADSTS refusals),
`GET /{tenant}/discovery/v2.0/keys` and
`GET /{tenant}/v2.0/.well-known/openid-configuration`. Tokens are RS256, signed
with a key generated at start, with Entra's app-only v2 claims (`identity`'s
docstring). The directory file's optional section::

    "identity": {
      "tenantId": "<guid>",             # the tenant: iss is <authority>/<tenantId>/v2.0
      "api": {"clientId": "<guid>",     # the API app registration: aud of every token
              "identifierUris": ["api://<clientId>"],   # the default; also valid in scope
              "appRoles": ["Onboarding.Submit", "Onboarding.Read"],
              "displayName": "user-onboarding API"},
      "clients": [{"name": "hr",        # a handle for tests and scripts (default: clientId)
                   "clientId": "<guid>", "objectId": "<guid>",  # oid/sub; generated if omitted
                   "displayName": "HR system", "secret": "<text>",
                   "roles": ["Onboarding.Submit"],  # app roles assigned (declared by the api)
                   "tenantId": "<guid>"}],  # default: tenantId; another tenant = a multi-tenant
                                            # registration consented there (its tokens carry
                                            # that tenant's iss and tid)
      "tokenLifetimeSeconds": 3599,     # expires_in (real: 3599)
      "idtypClaim": true                # emit the optional idtyp claim (false: as a tenant
    }                                   # that has not configured it)

Without it, the issuer knows no tenant (Entra's AADSTS90002 for every tenant).
Control API under `/_emulator/identity` (no auth, JSON): `GET` -> the configuration
(no secrets) with `issuer`, `authority` and the published `signingKeys`;
`POST /clients` (a client as in the file) -> 201; `POST /keys/rotate`
`{"retirePrevious": false}` -> `{"kid", "published"}` (new tokens are signed with
the new key; old keys stay in the JWKS unless retired); `POST /tokens`
`{"client": name|clientId, "claims": {...}, "header": {...}, "tenantId": ...}` ->
`{"access_token"}`: a token as the endpoint would issue it with claims replaced (null
removes one), for tests of what validators refuse; `GET /requests` (the issuer's own
log: method, path, status, clientId or AADSTS code) and `DELETE /requests`.
In-process: `emulator.identity` (`IdentityIssuer`: `client(name)`, `add_client`,
`rotate_key`, `mint`, `signing_kid`, `public_pem`, `requests`, `describe`).
`POST /_emulator/reset` reloads the identity section too; signing keys stay.

Control API (no auth, JSON, under `/_emulator`)
------------------------------------------------
- `GET  /health` -> `{"status": "ok"}`
- `POST /users` (a user as in the file) -> 201 full record
- `GET  /users/{id-or-upn}` -> full record, visible or not, with an `_emulator` section
  (`visible`, `appearAt` (null while awaiting sync), `syncAt`, `awaitingSync`,
  `directLicenses`, `groupLicenses` (the static key), `memberOf` (group ids),
  `pendingLicenseProcessing` (`[{"groupId", "dueAt"}]`), and `lag`:
  the remaining `writeNotFound` and `keyLookupLag`, the user's `usageLocationLag`, and
  `usageLocationPending`, the assignLicense refusals left since the last usageLocation PATCH)
- `GET  /users/{id-or-upn}/licenseAssignmentStates` -> the user's states, as Graph's
  `$select=licenseAssignmentStates` shows them
- `POST /users/{id-or-upn}/sync` -> the user exists and is synced from now
- `PUT  /users/{id-or-upn}/lag` `{"writeNotFound": N, "usageLocationLag": N,
  "keyLookupLag": N}` (any subset) -> that user's counters from now; the full record
- `GET  /consistency`; `PUT /consistency` (any subset of the same keys) -> the lag
  defaults, for users added from then on (existing users keep their counters)
- `GET  /permissions` -> `{"granted": [names] | null}` (null = every permission);
  `PUT /permissions` `{"granted": [names] | null}`; `POST /permissions/{name}` grants one,
  `DELETE /permissions/{name}` revokes one (from null: every other known permission);
  each answers `{"granted": ...}`; an unknown name is a 400
- `GET  /batch`; `PUT /batch` `{"shuffle": true|false}` -> `$batch` responses shuffled
  (default) or in request order
- `GET  /skus`; `PUT /skus/{skuPartNumber}` `{"enabled": N, "consumedUnits": N, ...}`
- `GET  /requests` -> log entries `{"method", "path" (raw, undecoded; a batch item's url
  path prefixed with /v1.0), "query" (raw), "headers" {"authorization": bool,
  "client-request-id", "content-type"}, "body" (parsed JSON, or the raw text if not
  JSON, or null), "status" (null if dropped), "dropped", "responseBody", "batchItem",
  "time"}`; batch items are logged as their own entries before the outer `/$batch` one.
- `DELETE /requests`
- `GET /faults`; `POST /faults` `{"method": "GET"|null, "path": "<regex searched in the
  decoded path after /v1.0>", "status": 429|503|504..., "retryAfter": s, "rate": 0..1,
  "count": N|null, "delayMs": N, "drop": bool, "code": str, "message": str}`;
  `DELETE /faults`. Drops do not apply inside `$batch` (there is no item connection).
- `POST /reset` (optional body: a new directory) -> also clears faults, log, throttling;
  the file's permissions and consistency defaults come back, budgets and batch order stay
- `PUT  /throttle` `{"unitsPer10s": 3500, "writesPer150s": 3000}` (0 = off; see
  `throttle` for the per-request costs and the 429's headers)
- `POST /clock/advance` `{"seconds": N}` (only with a manual clock, else 409)
- `GET  /sync` -> `{"jobs", "cycleSeconds", "onDemandDelaySeconds", "lastCycleAt",
  "nextCycleAt", "awaitingSync": [upn]}`; `PUT /sync` `{"cycleSeconds": N,
  "onDemandDelaySeconds": N}` (any subset; a new cycleSeconds restarts the schedule now)
- `POST /sync/cycle` -> runs a cycle now: `{"synced": [upn]}` (the schedule is unchanged)
- `GET  /sync/provisionOnDemand` -> the request log's provisionOnDemand entries
- `GET  /groups`; `POST /groups` (a group as in the file; members processed after the
  delay) -> 201; `GET /groups/{id}` -> `{"id", "displayName", "securityEnabled",
  "description", "licenses", "members", "pendingLicenseProcessing": [{"userId", "dueAt"}]}`
- `PUT  /groups/{id}/licenses` `{"licenses": [{"skuId", "disabledPlans"}]}` -> the group;
  states of SKUs dropped go at once, every member is reprocessed after the delay
- `GET  /licensing`; `PUT /licensing` `{"groupLicenseDelaySeconds": N,
  "tenantUsageLocation": "FR" | null}` (any subset)
- Teams, under `/teams` (details in `teams_control`): `GET|PUT /teams` (the
  delays above, `readsPerSecond`, `writesPerSecond`, `failNext`); `POST
  /teams/users` (a `teams.users` entry); `GET /teams/users/{key}`; `POST
  /teams/users/{key}/move` `{"delaySeconds"?}`; `GET|POST /teams/numbers`;
  `GET /teams/numbers/{number}`; `GET /teams/operations` (the orders' log);
  `POST /teams/operations/failNext` `{"count"?, "statusDetail"?}`

See README.md for the Graph behaviours deliberately not modelled.
"""

from __future__ import annotations

from .clock import ManualClock, SystemClock
from .directory import DirectoryFormatError
from .server import Emulator, ensure_loopback, start_emulator
from .service import DEFAULT_TOKEN

__all__ = [
    "DEFAULT_TOKEN",
    "DirectoryFormatError",
    "Emulator",
    "ManualClock",
    "SystemClock",
    "ensure_loopback",
    "start_emulator",
]
