"""Tax ids and billing addresses for tax invoices (the brief's scenario 6): the rules, once.

Pure (no models, no services), so every layer that takes a tax id or an address
uses the same rules: the ``send_tax_invoice`` action's parameters (services), the
tax details endpoint (``selectors.tax``, which lists the supported types with an
example each) and the sandbox provider, which validates tax ids as Stripe would.
``services.tax`` re-exports these names.

Each supported Stripe tax id type has a normaliser that returns the canonical form
Stripe stores (``DE123456789``, ``12-3456789``, ``CHE-123.456.788 MWST``) or None
when the value is malformed — the format per country and, where the issuing
authority publishes one, the check digit (Australian ABN, British VAT, Indian
GSTIN, Swiss UID, Norwegian organisation number, Japanese corporate number).

A type Stripe knows but Billing Desk does not validate is refused with
``unsupported_tax_id_type`` rather than passed through unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext, gettext_noop

from .errors import ValidationFailed

# --- EU VAT: the number after the country prefix, per member state (and XI, Northern Ireland).
_EU_VAT = {
    "AT": r"U\d{8}",
    "BE": r"[01]\d{9}",
    "BG": r"\d{9,10}",
    "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}",
    "DE": r"\d{9}",
    "DK": r"\d{8}",
    "EE": r"\d{9}",
    "EL": r"\d{9}",
    "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"\d{8}",
    "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"\d{11}",
    "HU": r"\d{8}",
    "IE": r"\d[A-Z0-9+*]\d{5}[A-Z]{1,2}",
    "IT": r"\d{11}",
    "LT": r"(\d{9}|\d{12})",
    "LU": r"\d{8}",
    "LV": r"\d{11}",
    "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}",
    "PL": r"\d{10}",
    "PT": r"\d{9}",
    "RO": r"\d{2,10}",
    "SE": r"\d{12}",
    "SI": r"\d{8}",
    "SK": r"\d{10}",
    "XI": r"(\d{9}|\d{12}|GD\d{3}|HA\d{3})",
}
_GSTIN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _mod11(digits: str, weights: tuple[int, ...]) -> int | None:
    """11 − (Σ digit × weight mod 11); 11 → 0; 10 means no valid number (None)."""
    check = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return None if check == 10 else 0 if check == 11 else check


def _abn_ok(digits: str) -> bool:
    """The Australian Business Register's check: weighted sum (first digit − 1) divisible by 89."""
    weights = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
    values = [int(d) for d in digits]
    values[0] -= 1
    return sum(w * v for w, v in zip(weights, values, strict=True)) % 89 == 0


def _gb_vat_ok(digits: str) -> bool:
    """HMRC's check: Σ digit × (8…2) + the last two digits ≡ 0 (mod 97), or ≡ 0 after + 55."""
    total = sum(int(d) * w for d, w in zip(digits[:7], range(8, 1, -1), strict=True))
    total += int(digits[7:9])
    return total % 97 == 0 or (total + 55) % 97 == 0


def _gstin_ok(value: str) -> bool:
    """GSTIN's last character: a base-36 Luhn-style check over the first fourteen."""
    total = 0
    for index, char in enumerate(value[:14]):
        product = _GSTIN_CHARS.index(char) * (1 if index % 2 == 0 else 2)
        total += product // 36 + product % 36
    return _GSTIN_CHARS[(36 - total % 36) % 36] == value[14]


def _jp_cn_ok(value: str) -> bool:
    """Japan's corporate number: the first digit checks the other twelve (mod 9)."""
    body = value[1:]
    total = sum(int(d) * (1 if i % 2 == 0 else 2) for i, d in enumerate(reversed(body)))
    return 9 - total % 9 == int(value[0])


# --- normalisers: compact upper-case value in, canonical value (or None) out ---------------------


def _eu_vat(value: str) -> str | None:
    prefix, rest = value[:2], value[2:]
    pattern = _EU_VAT.get(prefix)
    return value if pattern and re.fullmatch(pattern, rest) else None


def _gb_vat(value: str) -> str | None:
    match = re.fullmatch(r"GB(\d{9}|\d{12}|GD\d{3}|HA\d{3})", value)
    if match is None:
        return None
    number = match[1]
    if number.isdigit() and not _gb_vat_ok(number[:9]):
        return None
    return value


def _au_abn(value: str) -> str | None:
    return value if re.fullmatch(r"\d{11}", value) and _abn_ok(value) else None


def _us_ein(value: str) -> str | None:
    match = re.fullmatch(r"(\d{2})-?(\d{7})", value)
    if match is None or match[1] == "00":
        return None
    return f"{match[1]}-{match[2]}"


def _ca_bn(value: str) -> str | None:
    return value if re.fullmatch(r"\d{9}", value) else None


def _ca_gst_hst(value: str) -> str | None:
    return value if re.fullmatch(r"\d{9}RT\d{4}", value) else None


def _in_gst(value: str) -> str | None:
    if not re.fullmatch(r"\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]", value):
        return None
    return value if _gstin_ok(value) else None


def _ch_vat(value: str) -> str | None:
    match = re.fullmatch(r"CHE(\d{9})(MWST|TVA|IVA)", value)
    if match is None or _mod11(match[1][:8], (5, 4, 3, 2, 7, 6, 5, 4)) != int(match[1][8]):
        return None
    d = match[1]
    return f"CHE-{d[:3]}.{d[3:6]}.{d[6:]} {match[2]}"


def _no_vat(value: str) -> str | None:
    match = re.fullmatch(r"(?:NO)?(\d{9})(MVA)", value)
    if match is None or _mod11(match[1][:8], (3, 2, 7, 6, 5, 4, 3, 2)) != int(match[1][8]):
        return None
    return f"{match[1]}MVA"


def _jp_cn(value: str) -> str | None:
    return value if re.fullmatch(r"\d{13}", value) and _jp_cn_ok(value) else None


def _nz_gst(value: str) -> str | None:
    return value if re.fullmatch(r"\d{8,9}", value) else None


def _za_vat(value: str) -> str | None:
    return value if re.fullmatch(r"4\d{9}", value) else None


def _sg_gst(value: str) -> str | None:
    return (
        value
        if re.fullmatch(r"[A-Z]\d{8}[A-Z]|\d{9}[A-Z]|[TSR]\d{2}[A-Z]{2}\d{4}[A-Z]", value)
        else None
    )


def _ae_trn(value: str) -> str | None:
    return value if re.fullmatch(r"\d{15}", value) else None


def _mx_rfc(value: str) -> str | None:
    return value if re.fullmatch(r"[A-Z&Ñ]{3,4}\d{6}[A-Z0-9]{3}", value) else None


@dataclass(frozen=True)
class TaxIdType:
    type: str
    label_words: str  # in English (the catalog's source); ``label`` in the active language
    example_words: str  # what a valid value looks like, for the agent (English)
    normalise: Callable[[str], str | None]
    keep_dashes: bool = False

    @property
    def label(self) -> str:
        return gettext(self.label_words)

    @property
    def example(self) -> str:
        return gettext(self.example_words)


TAX_ID_TYPES: dict[str, TaxIdType] = {
    t.type: t
    for t in (
        TaxIdType(
            "eu_vat",
            gettext_noop("EU VAT number"),
            gettext_noop("a country prefix and number, e.g. DE123456789"),
            _eu_vat,
        ),
        TaxIdType(
            "gb_vat",
            gettext_noop("UK VAT number"),
            gettext_noop("GB and 9 or 12 digits, e.g. GB980780684"),
            _gb_vat,
        ),
        TaxIdType(
            "au_abn",
            gettext_noop("Australian Business Number"),
            gettext_noop("11 digits with a valid ABN checksum, e.g. 51824753556"),
            _au_abn,
        ),
        TaxIdType(
            "us_ein",
            gettext_noop("US Employer Identification Number"),
            gettext_noop("9 digits, e.g. 12-3456789"),
            _us_ein,
            keep_dashes=True,
        ),
        TaxIdType(
            "ca_bn",
            gettext_noop("Canadian Business Number"),
            gettext_noop("9 digits, e.g. 123456789"),
            _ca_bn,
        ),
        TaxIdType(
            "ca_gst_hst",
            gettext_noop("Canadian GST/HST number"),
            gettext_noop("e.g. 123456789RT0002"),
            _ca_gst_hst,
        ),
        TaxIdType(
            "in_gst",
            gettext_noop("Indian GSTIN"),
            gettext_noop("15 characters with a valid check character, e.g. 27AAPFU0939F1ZV"),
            _in_gst,
        ),
        TaxIdType(
            "ch_vat",
            gettext_noop("Swiss VAT number"),
            gettext_noop("e.g. CHE-116.281.710 MWST"),
            _ch_vat,
        ),
        TaxIdType(
            "no_vat",
            gettext_noop("Norwegian VAT number"),
            gettext_noop("9 digits and MVA, e.g. 974760673MVA"),
            _no_vat,
        ),
        TaxIdType(
            "jp_cn",
            gettext_noop("Japanese corporate number"),
            gettext_noop("13 digits, e.g. 7000012050002"),
            _jp_cn,
        ),
        TaxIdType(
            "nz_gst",
            gettext_noop("New Zealand GST number"),
            gettext_noop("8 or 9 digits, e.g. 123456789"),
            _nz_gst,
        ),
        TaxIdType(
            "za_vat",
            gettext_noop("South African VAT number"),
            gettext_noop("10 digits starting with 4, e.g. 4123456789"),
            _za_vat,
        ),
        TaxIdType(
            "sg_gst",
            gettext_noop("Singaporean GST number"),
            gettext_noop("e.g. M12345678X"),
            _sg_gst,
        ),
        TaxIdType(
            "ae_trn",
            gettext_noop("UAE Tax Registration Number"),
            gettext_noop("15 digits, e.g. 123456789012345"),
            _ae_trn,
        ),
        TaxIdType(
            "mx_rfc", gettext_noop("Mexican RFC"), gettext_noop("e.g. ABC010203AB9"), _mx_rfc
        ),
    )
}


def tax_id_types() -> list[dict[str, str]]:
    """The tax id types Billing Desk validates, with a label and an example each."""
    return [{"type": t.type, "label": t.label, "example": t.example} for t in TAX_ID_TYPES.values()]


def tax_id_normalize(*, tax_type: str, value: str) -> str:
    """The canonical value of a tax id of ``tax_type`` (Stripe's ``type``), else ``ValidationFailed``.

    Codes: ``unsupported_tax_id_type`` (a type not validated here),
    ``invalid_tax_id`` (malformed, or a wrong check digit). ``details.field``
    names the offending field (``type`` or ``value``).
    """
    spec = TAX_ID_TYPES.get(tax_type or "")
    if spec is None:
        raise ValidationFailed(
            gettext("Unsupported tax id type; use one of %(types)s.")
            % {"types": ", ".join(TAX_ID_TYPES)},
            code="unsupported_tax_id_type",
            details={"field": "type", "supported": list(TAX_ID_TYPES)},
        )
    compact = re.sub(r"[\s.]", "", value or "").upper()
    if not spec.keep_dashes:
        compact = compact.replace("-", "")
    canonical = spec.normalise(compact) if compact else None
    if canonical is None:
        raise ValidationFailed(
            gettext("Not a valid %(type)s number: expected %(example)s.")
            % {"type": tax_type, "example": spec.example},
            code="invalid_tax_id",
            details={"field": "value", "type": tax_type, "example": spec.example},
        )
    return canonical


# --- billing addresses ------------------------------------------------------------------------

ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")
_POSTAL_CODES: dict[str, str] = {
    "US": r"\d{5}(-\d{4})?",
    "DE": r"\d{5}",
    "FR": r"\d{5}",
    "ES": r"\d{5}",
    "IT": r"\d{5}",
    "AT": r"\d{4}",
    "CH": r"\d{4}",
    "BE": r"\d{4}",
    "NL": r"\d{4} ?[A-Z]{2}",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}",
    "CA": r"[A-Z]\d[A-Z] ?\d[A-Z]\d",
    "AU": r"\d{4}",
    "JP": r"\d{3}-?\d{4}",
    "IN": r"\d{6}",
}


def billing_address_validate(address: Mapping[str, Any]) -> dict[str, str]:
    """A billing address with a two-letter country and a postal code of that country's form."""
    unknown = sorted(set(address) - set(ADDRESS_FIELDS))
    if unknown:
        raise ValidationFailed(
            gettext("Unknown address fields: %(fields)s.") % {"fields": ", ".join(unknown)},
            code="invalid_address",
            details={"fields": unknown},
        )
    clean = {k: str(address.get(k) or "").strip() for k in ADDRESS_FIELDS if k in address}
    country = clean.get("country", "").upper()
    if country and not re.fullmatch(r"[A-Z]{2}", country):
        raise ValidationFailed(
            gettext("country must be a two-letter ISO 3166 code such as DE."),
            code="invalid_address",
            details={"field": "country"},
        )
    if country:
        clean["country"] = country
    postal = clean.get("postal_code", "").upper()
    pattern = _POSTAL_CODES.get(country)
    if postal and pattern and not re.fullmatch(pattern, postal):
        raise ValidationFailed(
            gettext("%(postal_code)s is not a postal code of %(country)s.")
            % {"postal_code": repr(clean["postal_code"]), "country": country},
            code="invalid_postal_code",
            details={"field": "postal_code", "country": country},
        )
    return clean


def tax_invoice_missing(
    *, address: Mapping[str, Any], tax_ids: Sequence[Mapping[str, Any]]
) -> list[str]:
    """What a tax invoice still lacks: a street address, city, postal code, country, a tax id."""
    missing = [k for k in ("line1", "city", "postal_code", "country") if not address.get(k)]
    if not tax_ids:
        missing.append("tax_id")
    return missing


__all__ = [
    "ADDRESS_FIELDS",
    "TAX_ID_TYPES",
    "billing_address_validate",
    "tax_id_normalize",
    "tax_id_types",
    "tax_invoice_missing",
]
