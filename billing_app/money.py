"""Money as integer minor units with an ISO currency; formatting only at the edge."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import NumberPattern, get_decimal_symbol
from django.utils.translation import get_language, to_locale

# Stripe's zero-decimal and three-decimal currencies; everything else has two.
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".upper().split()
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".upper().split())
# ISO 4217 codes of circulating currencies. ``Money`` accepts any three-letter code
# (Stripe objects may carry codes we do not list); configuration — a workspace's
# base currency, an exchange rate — must use one of these.
KNOWN_CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD
    BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
    EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA
    MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK
    PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV
    WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
    """.strip().split()
)
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "CAD": "CA$", "INR": "₹"}


def exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def is_currency_code(value: object) -> bool:
    return isinstance(value, str) and len(value) == 3 and value.isalpha()


def is_known_currency(value: object) -> bool:
    """Whether ``value`` is a circulating ISO 4217 code (either case)."""
    return isinstance(value, str) and value.upper() in KNOWN_CURRENCIES


@dataclass(frozen=True, slots=True)
class Money:
    amount: int  # minor units
    currency: str  # ISO 4217, upper case

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int of minor units")
        if not is_currency_code(self.currency):
            raise ValueError(f"not a currency code: {self.currency!r}")
        object.__setattr__(self, "currency", self.currency.upper())

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)

    def to_dict(self) -> dict[str, object]:
        return money_json(self.amount, self.currency)


def to_decimal(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


def from_decimal(value: Decimal, currency: str) -> int:
    scaled = value.scaleb(exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(scaled)


def money_language() -> str | None:
    """The active language when money is written its way (CLDR), ``None`` for English.

    English keeps Billing Desk's own format (``$2,400.00``, ``2,400.00 CHF``); another
    language writes amounts as CLDR does for it (German ``2.400,00 $``, ``49.800 ¥``).
    """
    language = get_language()
    if not language or language.lower().startswith("en"):
        return None
    return language


@lru_cache(maxsize=256)
def _currency_pattern(language: str, exp: int) -> tuple[Locale, NumberPattern]:
    """The language's currency pattern with exactly ``exp`` decimals (Stripe's exponent,
    which the amounts are counted in, not CLDR's digits for the currency)."""
    locale = Locale.parse(to_locale(language))
    pattern = copy.copy(locale.currency_formats["standard"])
    pattern.frac_prec = (exp, exp)
    return locale, pattern


def _format_localized(amount: int, code: str, language: str) -> str:
    locale, pattern = _currency_pattern(language, exponent(code))
    text: str = pattern.apply(
        to_decimal(amount, code), locale, currency=code, currency_digits=False
    )
    return text


def format_money(amount: int, currency: str) -> str:
    """``240000, "USD"`` → ``$2,400.00``; negative amounts as ``-$5.00``.

    In another active language than English, as CLDR writes it there (German
    ``2.400,00 $``), always with the currency's exponent of decimals.
    """
    code = currency.upper()
    language = money_language()
    if language is not None:
        return _format_localized(amount, code, language)
    exp = exponent(code)
    value = to_decimal(abs(amount), code)
    number = f"{value:,.{exp}f}"
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {code}"


def short_money(amount: int, currency: str) -> str:
    """``$2,400`` for whole amounts, ``$2,400.50`` otherwise (people-facing plan prices)."""
    text = format_money(amount, currency)
    exp = exponent(currency)
    if exp and amount % (10**exp) == 0:
        language = money_language()
        if language is None:
            return text.replace("." + "0" * exp, "", 1)
        locale, _ = _currency_pattern(language, exp)
        return text.replace(get_decimal_symbol(locale) + "0" * exp, "", 1)
    return text


def money_json(amount: int, currency: str) -> dict[str, object]:
    """Money as the API sends it: minor units, the currency, its exponent, and the text.

    The exponent (digits after the decimal point, ISO 4217 / Stripe) lets a client
    format and parse amounts without a currency table of its own.
    """
    code = currency.upper()
    return {
        "amount": int(amount),
        "currency": code,
        "exponent": exponent(code),
        "display": format_money(int(amount), code),
    }


def convert(amount: int, currency: str, to_currency: str, rate: Decimal) -> int:
    """Convert minor units of ``currency`` into minor units of ``to_currency``.

    ``rate`` is how many units of ``to_currency`` one unit of ``currency`` buys.
    """
    major = to_decimal(amount, currency) * rate
    return from_decimal(major, to_currency)
