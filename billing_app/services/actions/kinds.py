"""Groups of action kinds and statuses the submission, the guards and the history share."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from ...catalog import ActionKind
from ...errors import ValidationFailed
from ...models import BillingAction

REFUND_KINDS = (ActionKind.ISSUE_REFUND.value, ActionKind.REFUND_DUPLICATE_CHARGE.value)
SUBSCRIPTION_KINDS = (
    ActionKind.EXTEND_TRIAL.value,
    ActionKind.PAUSE_SUBSCRIPTION.value,
    ActionKind.CHANGE_PLAN.value,
    ActionKind.CANCEL_SUBSCRIPTION.value,
    ActionKind.FORCE_CANCEL.value,
    ActionKind.ADJUST_SEATS.value,
    ActionKind.APPLY_DISCOUNT.value,
    ActionKind.EXTEND_GRACE_PERIOD.value,
    ActionKind.RESUME_SUBSCRIPTION.value,
    ActionKind.UNDO_CANCELLATION.value,
)
# Refunds that may still move money: history (the refund pattern, the refundable remainder)
# counts them as if done, so a submission decided while they run sees them.
REFUNDS_IN_FLIGHT = (
    BillingAction.Status.EXECUTING.value,
    BillingAction.Status.OUTCOME_UNKNOWN.value,
    BillingAction.Status.PENDING_APPROVAL.value,
)
# Actions still in someone's hands: executing now, or sent with the outcome unknown.
OPEN = (BillingAction.Status.EXECUTING, BillingAction.Status.OUTCOME_UNKNOWN)
TERMINAL = (
    BillingAction.Status.SUCCEEDED,
    BillingAction.Status.FAILED,
    BillingAction.Status.NOT_PERMITTED,
    BillingAction.Status.DENIED,
    BillingAction.Status.EXPIRED,
)


def action_kind_parse(value: Any) -> ActionKind:
    """``value`` as an ``ActionKind``, or ``ValidationFailed`` ``unknown_kind`` listing the kinds."""
    try:
        return ActionKind(value)
    except ValueError:
        raise ValidationFailed(
            _("Unknown action kind %(kind)s.") % {"kind": repr(value)},
            code="unknown_kind",
            details={"kinds": [k.value for k in ActionKind]},
        ) from None
