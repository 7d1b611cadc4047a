"""Overcharge investigation: an invoice taken apart and compared with the usual amount.

``invoice_breakdown`` answers ``GET customers/{id}/invoices/{invoice_id}/breakdown/``
(the brief's scenario 5, "I was overcharged"), from the mirror only:

* **Lines**, each classified (``lines``): the *plan* (the subscription's main item;
  with a quantity above one, its seats), *add-ons*, *proration* lines from an earlier
  change and *one-time* invoice items. Then the invoice's *discounts*, the *credit
  applied* from the customer's balance (``starting_balance``) and *tax*.
* **The usual amount** (``invoice``): the subscription's previous regular invoice (a
  cycle or creation invoice without proration lines) — what the customer expected to pay.
* **Each difference** from it, explained in plain words (``differences``;
  ``prorations`` groups prorations by the change that caused them: seats 20 → 35 on
  a date, for the days left of that period). The differences add up to the change
  in total; anything left is named as such.
* **The next invoice** (``next_invoice``): what the subscription's next renewal bills,
  by the one rule the panel's context uses too (``billing_app.invoice_rules``): the
  items due (a scheduled downgrade included), less the running discounts, plus tax at
  the subscription's tax rates, else at this invoice's effective rate.

The answer also carries the scenario-5 message's fields (``message``) and the
action an agent takes on a genuine error (a credit for this invoice).
"""

from __future__ import annotations

from .invoice import invoice_breakdown
from .next_invoice import next_invoice_estimate

__all__ = ["invoice_breakdown", "next_invoice_estimate"]
