"""The sandbox billing provider: a deterministic simulation with Stripe's semantics."""

from .provider import AdvanceResult, SandboxProvider, sandbox_advance, sandbox_invoice_now

__all__ = ["AdvanceResult", "SandboxProvider", "sandbox_advance", "sandbox_invoice_now"]
