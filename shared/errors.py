"""The app's one error tree. Lower-level errors are translated into it in one place each
(`shared.graph` for msgraph-sdk and httpx, `shared.settings` for the environment).

    OnboardingError
    ├── InvalidRequest        the message breaks the contract: `rejected`, never retried
    ├── SettingsError         a missing or malformed app setting: the app refuses to start
    └── GraphError
        ├── GraphRefused      Graph said no, for good (400, 403 on a write...): `failed`
        │                     with a reason code
        └── GraphUnavailable  throttling (429), 5xx, timeouts, network trouble: the request
                              goes to the pending queue for a later try, never to the host

Failures of the storage queues are deliberately not in this tree: they propagate to the
Functions host, whose retries and poison queue handle them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class OnboardingError(Exception):
    """Base of every error the app raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One field-level problem of an invalid message: `field` is '' for the whole body."""

    field: str
    problem: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class InvalidRequest(OnboardingError):
    """The message breaks the contract; `errors` says which fields and why."""

    def __init__(self, errors: Sequence[FieldError], *, request_id: str | None = None) -> None:
        self.errors = tuple(errors)
        self.request_id = request_id
        super().__init__("; ".join(f"{e.field or 'message'}: {e.problem}" for e in self.errors))


class SettingsError(OnboardingError):
    """A missing or malformed app setting, named in the message."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"app setting {setting}: {problem}")


class GraphError(OnboardingError):
    """Microsoft Graph did not do what was asked. `status` 0 means no HTTP answer."""

    def __init__(
        self, message: str, *, status: int = 0, code: str = "", request_id: str | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.graph_message = message
        self.request_id = request_id
        super().__init__(f"Graph {status or 'no answer'} {code}: {message}".strip())

    def details(self) -> dict[str, object]:
        """Graph's own words, for events and logs (request-id is what Microsoft support asks)."""
        out: dict[str, object] = {
            "status": self.status,
            "code": self.code,
            "message": self.graph_message,
        }
        if self.request_id:
            out["requestId"] = self.request_id
        return out


class GraphRefused(GraphError):
    """A permanent refusal; `reason` is the contract's failure code it maps to."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        status: int = 400,
        code: str = "",
        request_id: str | None = None,
    ) -> None:
        self.reason = reason
        super().__init__(message, status=status, code=code, request_id=request_id)


class GraphUnavailable(GraphError):
    """Transient trouble; `retry_after` is Graph's Retry-After in seconds, when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, code=code, request_id=request_id)
