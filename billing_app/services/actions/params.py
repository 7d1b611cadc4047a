"""The parameters of each action kind, validated by one DRF serializer per kind.

``action_submit`` runs these for every submission, so the panel, the API and an
approval that executes days later all go through the same validation.
Serializers check shape only (types, ranges, enumerations, formats); whether the
charge or subscription exists and belongs to the customer is checked against
the mirror by ``preconditions``. ``action_params_validate`` returns a JSON-ready
dict in a canonical form, which is also what the idempotency fingerprint is
computed on. (DRF serializers are used as a validation library here; nothing in
this module knows about requests.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers

from ... import vocabulary
from ...catalog import ActionKind
from ...errors import ValidationFailed
from ...money import is_currency_code
from ..tax import tax_id_normalize as _tax_id_normalize

MAX_AMOUNT = 10**12  # minor units; far above any real charge, below overflow

# The enumerations come from the one vocabulary (``billing_app.vocabulary``), which the
# panel receives too. Our refund reasons (kept for analytics) → Stripe's ``reason`` enum.
REFUND_REASONS: dict[str, str] = {
    key: reason.stripe_reason for key, reason in vocabulary.REFUND_REASONS.items()
}
CANCELLATION_FEEDBACK = tuple(vocabulary.CANCELLATION_FEEDBACK)  # Stripe's feedback enum
PAUSE_BEHAVIORS = tuple(vocabulary.PAUSE_BEHAVIORS)
DISCOUNT_DURATIONS = tuple(vocabulary.DISCOUNT_DURATIONS)
MAX_TRIAL_EXTENSION_DAYS = 365  # Stripe refuses a trial_end more than two years out
MAX_GRACE_DAYS = 60
MAX_DISCOUNT_MONTHS = 36


def tax_id_normalize(tax_type: str, value: str) -> str:
    """The canonical form of a tax id, or ``serializers.ValidationError`` with a code.

    The rules per tax id type live in ``services.tax`` (shared with the tax
    details endpoint); codes: ``unsupported_tax_id_type``, ``invalid_tax_id``.
    """
    try:
        return _tax_id_normalize(tax_type=tax_type, value=value)
    except ValidationFailed as exc:
        field = str(exc.details.get("field") or "value")
        raise serializers.ValidationError({field: exc.message}, code=exc.code) from exc


class CurrencyField(serializers.CharField):
    def __init__(self, **kwargs: Any):
        kwargs.setdefault("min_length", 3)
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not is_currency_code(value):
            raise serializers.ValidationError(
                _("Use an ISO 4217 currency code such as USD."), code="invalid_currency"
            )
        return value.upper()


def _id_field(prefixes: tuple[str, ...] = (), **kwargs: Any) -> serializers.CharField:
    """A provider object id (``ch_…``, ``sub_…``); ownership is checked by the service."""
    kwargs.setdefault("help_text", " or ".join(f"{p}…" for p in prefixes))
    return serializers.RegexField(r"^[A-Za-z0-9_\-]{3,255}$", max_length=255, **kwargs)


class ActionParams(serializers.Serializer):
    """Base: unknown keys are refused so a typo never silently drops a parameter."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: [_("Unknown parameter.")] for key in unknown}, code="unknown_parameter"
                )
        return super().to_internal_value(data)


class MoneyParams(ActionParams):
    amount = serializers.IntegerField(
        min_value=1, max_value=MAX_AMOUNT, help_text="Minor units (cents; yen for JPY)."
    )
    currency = CurrencyField()


class GeneratePaymentLinkParams(ActionParams):
    invoice_id = _id_field(("in_",), required=False)


class ResendInvoiceParams(ActionParams):
    invoice_id = _id_field(("in_",))


class ApplyCreditParams(MoneyParams):
    description = serializers.CharField(
        max_length=350, required=False, default="", allow_blank=True
    )
    invoice_id = _id_field(
        ("in_",), required=False, help_text="The invoice the credit corrects (overcharge)."
    )


class IssueRefundParams(MoneyParams):
    charge_id = _id_field(("ch_", "py_"))
    reason = serializers.ChoiceField(choices=list(REFUND_REASONS))
    comment = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class ExtendTrialParams(ActionParams):
    subscription_id = _id_field(("sub_",))
    days = serializers.IntegerField(min_value=1, max_value=MAX_TRIAL_EXTENSION_DAYS)


class PauseSubscriptionParams(ActionParams):
    subscription_id = _id_field(("sub_",))
    behavior = serializers.ChoiceField(choices=PAUSE_BEHAVIORS)
    resumes_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate_resumes_at(self, value: datetime | None) -> datetime | None:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError(
                _("The resume date must be in the future."), code="resume_in_past"
            )
        return value


class ResumeSubscriptionParams(ActionParams):
    """Resume payment collection on a paused subscription now."""

    subscription_id = _id_field(("sub_",))


class UndoCancellationParams(ActionParams):
    """Keep a subscription set to cancel at its period end."""

    subscription_id = _id_field(("sub_",))


class ChangePlanParams(ActionParams):
    subscription_id = _id_field(("sub_",))
    price_id = _id_field(("price_",))
    proration_date = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The preview's proration_date, so the change invoices what was previewed.",
    )


class CancelParams(ActionParams):
    subscription_id = _id_field(("sub_",))
    reason = serializers.ChoiceField(
        choices=CANCELLATION_FEEDBACK, help_text="Stripe's cancellation feedback."
    )
    comment = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)
    customer_requested = serializers.BooleanField(default=False)


class CancelSubscriptionParams(CancelParams):
    pass


class ForceCancelParams(CancelParams):
    comment = serializers.CharField(
        max_length=500, help_text="Why the subscription is cancelled immediately."
    )


class UpdatePaymentMethodParams(ActionParams):
    return_url = serializers.URLField(
        max_length=1000,
        required=False,
        default="",
        help_text="Where the customer lands after updating their card.",
    )


class AdjustSeatsParams(ActionParams):
    subscription_id = _id_field(("sub_",))
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    item_id = _id_field(("si_",), required=False, help_text="Default: the plan's item.")


class ApplyDiscountParams(ActionParams):
    subscription_id = _id_field(("sub_",))
    percent_off = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal("0.01"), max_value=Decimal(100)
    )
    duration = serializers.ChoiceField(choices=DISCOUNT_DURATIONS)
    duration_in_months = serializers.IntegerField(
        min_value=1, max_value=MAX_DISCOUNT_MONTHS, required=False, allow_null=True, default=None
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        months = attrs.get("duration_in_months")
        if attrs["duration"] == "repeating" and months is None:
            raise serializers.ValidationError(
                {"duration_in_months": _("Required for a repeating discount.")},
                code="months_required",
            )
        if attrs["duration"] != "repeating" and months is not None:
            raise serializers.ValidationError(
                {"duration_in_months": _("Only a repeating discount has a number of months.")},
                code="months_not_allowed",
            )
        return attrs


class RefundDuplicateChargeParams(ActionParams):
    charge_ids = serializers.ListField(
        child=_id_field(("ch_", "py_")),
        min_length=2,
        max_length=2,
        help_text="The two charges of the duplicate pair; the later one is refunded.",
    )

    def validate_charge_ids(self, value: list[str]) -> list[str]:
        if value[0] == value[1]:
            raise serializers.ValidationError(
                _("The two charges must differ."), code="same_charge_twice"
            )
        return sorted(value)


class ExtendGracePeriodParams(ActionParams):
    subscription_id = _id_field(("sub_",))
    days = serializers.IntegerField(min_value=1, max_value=MAX_GRACE_DAYS)
    invoice_id = _id_field(("in_",), required=False, help_text="The failed invoice.")


class TaxIdParams(ActionParams):
    type = serializers.CharField(max_length=16)
    value = serializers.CharField(max_length=64)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return {"type": attrs["type"], "value": tax_id_normalize(attrs["type"], attrs["value"])}


class AddressParams(ActionParams):
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    city = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    state = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    postal_code = serializers.CharField(max_length=32, required=False, default="", allow_blank=True)
    country = serializers.RegexField(
        r"^[A-Za-z]{2}$", help_text="ISO 3166-1 alpha-2 country code, e.g. DE."
    )

    def to_internal_value(self, data: Any) -> Any:
        # Stripe writes absent address parts as null; the panel sends the address back as read.
        if isinstance(data, Mapping):
            data = {k: ("" if v is None and k != "country" else v) for k, v in data.items()}
        return super().to_internal_value(data)

    def validate_country(self, value: str) -> str:
        return value.upper()


class SendTaxInvoiceParams(ActionParams):
    invoice_id = _id_field(("in_",))
    tax_id = TaxIdParams(required=False, allow_null=True, default=None)
    address = AddressParams(required=False, allow_null=True, default=None)


PARAMS_SERIALIZERS: dict[ActionKind, type[ActionParams]] = {
    ActionKind.GENERATE_PAYMENT_LINK: GeneratePaymentLinkParams,
    ActionKind.RESEND_INVOICE: ResendInvoiceParams,
    ActionKind.APPLY_CREDIT: ApplyCreditParams,
    ActionKind.ISSUE_REFUND: IssueRefundParams,
    ActionKind.EXTEND_TRIAL: ExtendTrialParams,
    ActionKind.PAUSE_SUBSCRIPTION: PauseSubscriptionParams,
    ActionKind.CHANGE_PLAN: ChangePlanParams,
    ActionKind.CANCEL_SUBSCRIPTION: CancelSubscriptionParams,
    ActionKind.FORCE_CANCEL: ForceCancelParams,
    ActionKind.UPDATE_PAYMENT_METHOD: UpdatePaymentMethodParams,
    ActionKind.ADJUST_SEATS: AdjustSeatsParams,
    ActionKind.APPLY_DISCOUNT: ApplyDiscountParams,
    ActionKind.REFUND_DUPLICATE_CHARGE: RefundDuplicateChargeParams,
    ActionKind.EXTEND_GRACE_PERIOD: ExtendGracePeriodParams,
    ActionKind.SEND_TAX_INVOICE: SendTaxInvoiceParams,
    ActionKind.RESUME_SUBSCRIPTION: ResumeSubscriptionParams,
    ActionKind.UNDO_CANCELLATION: UndoCancellationParams,
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Canonical: 10, 10.5 — never "10.00" vs "10", so equal requests fingerprint equally.
        normal = value.normalize()
        return format(normal, "f")
    return value


def _codes(detail: Any) -> Any:
    if isinstance(detail, Mapping):
        return {key: _codes(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_codes(value) for value in detail]
    return str(getattr(detail, "code", None) or "invalid")


def _first_code(codes: Any) -> str:
    if isinstance(codes, Mapping):
        return next((_first_code(v) for v in codes.values()), "invalid")
    if isinstance(codes, list):
        return _first_code(codes[0]) if codes else "invalid"
    return str(codes)


def _messages(detail: Any) -> list[str]:
    if isinstance(detail, Mapping):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list):
        return [m for value in detail for m in _messages(value)]
    return [str(detail)]


def _invalid_message(kind: ActionKind, errors: Any) -> str:
    """``Check the details of Adjust seat count: A valid integer is required.`` — the action
    by its label and the serializer's own sentences, never a code."""
    found = list(dict.fromkeys(_messages(errors)))
    said = " ".join(m if m.endswith(".") else f"{m}." for m in found[:3])
    return (
        _("Check the details of %(action)s: %(problems)s")
        % {"action": vocabulary.action_label(kind), "problems": said}
    ).strip()


def action_params_validate(*, kind: ActionKind, params: Any) -> dict[str, Any]:
    """Validate ``params`` for ``kind``; a canonical JSON-ready dict, or ``ValidationFailed``.

    The error's ``details`` has the serializer's per-field messages and
    ``details["codes"]`` their machine-readable codes.
    """
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ValidationFailed(
            _("params must be an object."),
            code="invalid_params",
            details={"params": [_("Not an object.")]},
        )
    serializer = PARAMS_SERIALIZERS[kind](data=dict(params))
    if not serializer.is_valid():
        codes = _codes(serializer.errors)
        raise ValidationFailed(
            _invalid_message(kind, serializer.errors),
            code="invalid_params",
            details={"params": serializer.errors, "codes": codes, "first_code": _first_code(codes)},
        )
    return _jsonable(dict(serializer.validated_data))
