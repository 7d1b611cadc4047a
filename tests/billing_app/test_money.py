"""Money as integer minor units with a currency; formatting and conversion."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_app.money import (
    Money,
    convert,
    exponent,
    format_money,
    from_decimal,
    is_currency_code,
    is_known_currency,
    to_decimal,
)


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("USD", 2), ("eur", 2), ("JPY", 0), ("krw", 0), ("KWD", 3), ("BHD", 3), ("CHF", 2)],
)
def test_exponent(currency, expected):
    assert exponent(currency) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (240_000, "USD", "$2,400.00"),
        (9_999, "USD", "$99.99"),
        (1, "USD", "$0.01"),
        (0, "USD", "$0.00"),
        (-500, "USD", "-$5.00"),
        (1_250, "EUR", "€12.50"),
        (150_000, "JPY", "¥150,000"),
        (1_234_567, "KWD", "1,234.567 KWD"),
        (1_050, "CHF", "10.50 CHF"),
        (1_050, "gbp", "£10.50"),
    ],
)
def test_format_money(amount, currency, shown):
    assert format_money(amount, currency) == shown


def test_money_holds_int_minor_units_and_an_upper_case_code():
    money = Money(1_250, "eur")
    assert money.currency == "EUR"
    assert str(money) == "€12.50"
    assert money.to_dict() == {
        "amount": 1_250,
        "currency": "EUR",
        "exponent": 2,
        "display": "€12.50",
    }
    assert Money(1_250, "EUR") == money


@pytest.mark.parametrize("amount", [12.5, Decimal("12.50"), "1250", True, None])
def test_money_refuses_anything_but_an_int_amount(amount):
    with pytest.raises(TypeError):
        Money(amount, "USD")


@pytest.mark.parametrize("currency", ["US", "USDD", "12$", "", None])
def test_money_refuses_a_malformed_currency(currency):
    with pytest.raises(ValueError):
        Money(100, currency)


def test_money_is_immutable():
    money = Money(100, "USD")
    with pytest.raises(AttributeError):
        money.amount = 200  # type: ignore[misc]


@pytest.mark.parametrize(
    ("amount", "currency", "to", "rate", "expected"),
    [
        (9_090, "EUR", "USD", Decimal("1.10"), 9_999),
        (10_000, "EUR", "USD", Decimal("1.0850"), 10_850),
        (9_999, "JPY", "USD", Decimal("0.01"), 9_999),  # ¥9,999 → $99.99
        (150_000, "JPY", "USD", Decimal("0.0067"), 100_500),  # ¥150,000 → $1,005.00
        (10_000, "USD", "JPY", Decimal("149.5"), 14_950),  # $100 → ¥14,950
        (1_000, "KWD", "USD", Decimal("3.25"), 325),  # 1.000 KWD → $3.25
        (1, "USD", "EUR", Decimal("0.5"), 0),  # half a cent rounds half-even → 0
        (3, "USD", "EUR", Decimal("0.5"), 2),  # 1.5 cents → 2
    ],
)
def test_convert_between_minor_units(amount, currency, to, rate, expected):
    assert convert(amount, currency, to, rate) == expected


def test_decimal_round_trip():
    assert to_decimal(12_345, "USD") == Decimal("123.45")
    assert to_decimal(12_345, "JPY") == Decimal("12345")
    assert from_decimal(Decimal("123.455"), "USD") == 12_346
    assert from_decimal(Decimal("123.445"), "USD") == 12_344
    assert from_decimal(Decimal("12.3456"), "KWD") == 12_346


def test_currency_code_shapes_and_known_codes():
    assert is_currency_code("usd") and is_currency_code("XTS")
    assert not is_currency_code("US") and not is_currency_code(840)
    assert is_known_currency("usd") and is_known_currency("JPY") and is_known_currency("KWD")
    assert not is_known_currency("XYZ") and not is_known_currency("XTS")
    assert not is_known_currency(None)
