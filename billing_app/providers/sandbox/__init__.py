"""The sandbox billing provider: a deterministic simulation with Stripe's semantics."""

from .provider import SandboxProvider

__all__ = ["SandboxProvider"]
