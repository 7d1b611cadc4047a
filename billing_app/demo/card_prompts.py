"""Card-update prompts in the demo (issue 18, docs/self-service.md section 1).

The seeded workspace opts in, so ``python manage.py card_prompts --workspace acme`` sends
the demo's prompt to the console: Northwind Traders, whose payment failed on an expired
card, gets the "update your card" email. Its link opens Billing Desk's card page, whose
button mints a sandbox session; the sandbox's session address is not a real page, so the
demo ends there (Stripe's hosted page in production).
Nothing runs on its own in the demo (no beat): the seed writes no prompt and sends nothing.
"""

from __future__ import annotations

from ..models import Workspace


def demo_card_prompts_seed(*, workspace: Workspace) -> None:
    if not workspace.card_prompts_enabled:
        workspace.card_prompts_enabled = True
        workspace.save(update_fields=["card_prompts_enabled"])
