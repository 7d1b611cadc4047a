"""The Stripe billing provider: ``StripeProvider`` over stripe-python's ``StripeClient``."""

from .provider import StripeProvider

__all__ = ["StripeProvider"]
