"""user-onboarding: the function app's package (contract, workflow, ports, service, adapters)."""
