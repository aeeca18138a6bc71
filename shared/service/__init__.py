"""The use cases: what the triggers call (the `OnboardingService` façade) over one module
per use case, and the ports (`typing.Protocol`s) they need from the outside world."""

from shared.service.onboarding import OnboardingService, Policy, SweepReport

__all__ = ["OnboardingService", "Policy", "SweepReport"]
