"""The panel's money input in the browser: major units typed, integer minor units sent."""

import pytest

pytestmark = pytest.mark.browser


def test_amounts_typed_in_major_units_become_minor_units_by_currency_exponent(bare_page):
    # given the panel's formatting module, loaded as the panel loads it
    bare_page.goto("/static/panel/panel.css")

    # when amounts are parsed for currencies with 2, 0 and 3 decimals
    results = bare_page.evaluate(
        """async () => {
            const f = await import('/static/panel/format.js');
            const cases = [
              ['50', 'USD'], ['1,250.5', 'USD'], ['$49.99', 'USD'], ['5000', 'JPY'],
              ['12.5', 'JPY'], ['1.234', 'KWD'], ['0', 'USD'], ['-5', 'USD'], ['abc', 'EUR'],
              ['10.001', 'EUR'],
            ];
            return cases.map(([text, cur]) => f.parseMajor(text, cur));
        }"""
    )

    # then exact minor units come back, and bad input is refused with a reason
    minors = [r.get("minor") for r in results]
    assert minors[:4] == [5000, 125050, 4999, 5000]
    assert results[4] == {"ok": False, "error": "JPY has no decimals: enter a whole amount."}
    assert minors[5] == 1234
    assert [r["ok"] for r in results[6:]] == [False, False, False, False]
    assert "at most 2 decimals" in results[9]["error"]


def test_minor_units_shown_in_major_units_for_zero_decimal_currencies(bare_page):
    bare_page.goto("/static/panel/panel.css")
    shown = bare_page.evaluate(
        """async () => {
            const f = await import('/static/panel/format.js');
            return [f.toMajorString(5000, 'USD'), f.toMajorString(5000, 'JPY'),
                    f.formatMoney(240000, 'USD'), f.formatMoney(5000, 'JPY')];
        }"""
    )
    assert shown == ["50.00", "5000", "$2,400.00", "¥5,000"]


def test_the_servers_exponent_decides_not_a_table_in_the_browser(bare_page):
    # given amounts whose Money JSON says how many decimals the currency has
    bare_page.goto("/static/panel/panel.css")

    # when they are parsed and shown with the server's exponent (the browser's own
    # ISO data would give ISK no decimals and USD two)
    shown = bare_page.evaluate(
        """async () => {
            const f = await import('/static/panel/format.js');
            return [f.parseMajor('12.5', 'ISK', 2), f.toMajorString(1250, 'ISK', 2),
                    f.parseMajor('12.5', 'USD', 0), f.formatMoney(5000, 'JPY', 0),
                    f.money({amount: 1234, currency: 'KWD', exponent: 3})];
        }"""
    )

    # then the exponent given is the one used
    assert shown[0] == {"ok": True, "minor": 1250}
    assert shown[1] == "12.50"
    assert shown[2] == {"ok": False, "error": "USD has no decimals: enter a whole amount."}
    assert shown[3] == "¥5,000"
    assert shown[4] == "KWD\u00a01.234"


def test_amounts_typed_in_german_notation_and_ambiguous_ones_refused(bare_page):
    # given the formatting module read in German (the page's language, given explicitly here)
    bare_page.goto("/static/panel/panel.css")

    # when German agents type amounts, with either mark where only one reading fits
    results = bare_page.evaluate(
        """async () => {
            const f = await import('/static/panel/format.js');
            const cases = [
              ['49,99', 'EUR', 2], ['1.250,50 €', 'EUR', 2], ['1.250', 'EUR', 2], ['1 250,5', 'EUR', 2],
              ['49.99', 'EUR', 2], ['1,250.50', 'USD', 2], ['5.000', 'JPY', 0], ['1.250', 'KWD', 3],
              ['1,2,3', 'EUR', 2], ['12,345', 'EUR', 2], ['1.234,567', 'KWD', 3],
            ];
            return cases.map(([text, cur, exp]) => f.parseMajor(text, cur, exp, 'de'));
        }"""
    )

    # then exact minor units come back where one reading fits
    assert [r.get("minor") for r in results[:7]] == [
        4999,
        125050,
        125000,
        125050,
        4999,
        125050,
        5000,
    ]
    # and "1.250" for a three-decimal currency (1,250 or 1.25?) is refused, never guessed
    assert results[7]["ok"] is False
    assert "1.250" in results[7]["error"] and "thousands separator" in results[7]["error"]
    assert results[8] == {"ok": False, "error": "Enter a number, such as 50 or 49,99."}
    assert results[9] == {"ok": False, "error": "EUR has at most 2 decimals."}
    assert results[10] == {"ok": True, "minor": 1234567}


def test_money_and_dates_written_for_the_locale(bare_page):
    bare_page.goto("/static/panel/panel.css")
    shown = bare_page.evaluate(
        """async () => {
            const f = await import('/static/panel/format.js');
            return [f.formatMoney(105000, 'USD', 2, 'de'), f.formatMoney(105000, 'EUR', 2, 'de'),
                    f.toMajorString(125050, 'EUR', 2, 'de'), f.longDate('2026-01-28', 'de'),
                    f.shortDate('2026-01-28', 'de'), f.shortDate('2026-01-28', 'en'),
                    f.longDate('2026-01-28', 'en')];
        }"""
    )
    assert shown == [
        "1.050,00\u00a0$", "1.050,00\u00a0€", "1250,50", "28.01.2026", "28.01.2026", "2026-01-28",
        "Jan 28, 2026",
    ]  # fmt: skip


# Input → minor units, or the refusal's message (None: refused with "Enter a number, …").
# Every row is parsed with the server's exponent: USD/EUR 2, JPY 0, KWD 3.
EXPONENTS = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}
MALFORMED = None
POSITIVE = "Enter a positive amount."
TABLE = [
    # (text, currency, language, expected)
    # A leading zero group is never a thousands group: the mark is a decimal point or refused.
    ("0.500", "USD", "en", "USD has at most 2 decimals."),
    ("0.500", "USD", "de", "USD has at most 2 decimals."),
    ("0,500", "USD", "en", "USD has at most 2 decimals."),
    ("0,500", "USD", "de", "USD has at most 2 decimals."),
    ("0,500", "EUR", "de", "EUR has at most 2 decimals."),
    ("0,50", "EUR", "de", 50),
    ("0.50", "EUR", "de", 50),
    ("0,50", "USD", "en", 50),
    ("0.500", "KWD", "de", 500),
    ("0,500", "KWD", "en", 500),
    ("0.500", "JPY", "de", "JPY has no decimals: enter a whole amount."),
    ("0.250.000", "EUR", "de", MALFORMED),
    ("0,250,000", "USD", "en", MALFORMED),
    ("0.250,00", "EUR", "de", MALFORMED),
    ("01.250", "EUR", "de", "EUR has at most 2 decimals."),
    # Digits split by spaces or apostrophes: only groups of three.
    ("1 250,5", "EUR", "de", 125050),
    ("1\u202f250,50\u00a0€", "EUR", "de", 125050),
    ("1'250.50", "USD", "en", 125050),
    ("1 250 000", "JPY", "en", 1250000),
    ("49 99", "EUR", "de", MALFORMED),
    ("49 99", "USD", "en", MALFORMED),
    ("1 5", "EUR", "de", MALFORMED),
    ("1 2500", "EUR", "de", MALFORMED),
    ("0 500", "JPY", "en", MALFORMED),
    ("49,99 5", "EUR", "de", MALFORMED),
    ("1  250", "EUR", "de", MALFORMED),
    # Negative in any notation, never read as positive.
    ("-5", "USD", "en", POSITIVE),
    ("−5,00", "EUR", "de", POSITIVE),
    ("\u22125.00", "USD", "en", POSITIVE),
    ("–5", "USD", "en", POSITIVE),
    ("$-5", "USD", "en", POSITIVE),
    ("-$5", "USD", "en", POSITIVE),
    ("5-", "USD", "en", POSITIVE),
    ("-5,00 €", "EUR", "de", POSITIVE),
    ("5,00 €-", "EUR", "de", POSITIVE),
    ("(5.00)", "USD", "en", POSITIVE),
    ("($5.00)", "USD", "en", POSITIVE),
    ("(5,00 €)", "EUR", "de", POSITIVE),
    ("(5.00", "USD", "en", MALFORMED),
    ("1-2", "USD", "en", MALFORMED),
    ("+5", "USD", "en", MALFORMED),
    # Mixed, repeated or trailing marks.
    ("1,2.3", "USD", "en", MALFORMED),
    ("1.2,3", "EUR", "de", MALFORMED),
    ("1,250.5.0", "USD", "en", MALFORMED),
    ("1.250,50,1", "EUR", "de", MALFORMED),
    ("12..5", "USD", "en", MALFORMED),
    ("1,,250", "USD", "en", MALFORMED),
    ("5.", "USD", "en", MALFORMED),
    ("5,", "EUR", "de", MALFORMED),
    ("1.250.", "EUR", "de", MALFORMED),
    ("1.2.3", "USD", "en", MALFORMED),
    ("1,2,3", "EUR", "de", MALFORMED),
    ("1,250 5", "USD", "en", MALFORMED),
    # Digits other than 0-9 (full-width, Arabic-Indic) and other currencies' signs.
    ("１２", "USD", "en", MALFORMED),
    ("１２,５０", "EUR", "de", MALFORMED),
    ("٥٠", "USD", "en", MALFORMED),
    ("€50", "USD", "en", "This amount is in USD: type it without another currency’s sign."),
    ("50 $", "EUR", "de", "This amount is in EUR: type it without another currency’s sign."),
    ("KWD 5", "USD", "en", "This amount is in USD: type it without another currency’s sign."),
    ("abc", "EUR", "en", MALFORMED),
    # What one reading fits is read exactly, in both languages.
    ("$49.99", "USD", "en", 4999),
    ("USD 49.99", "USD", "en", 4999),
    ("49,99 $", "USD", "de", 4999),
    ("1.250,50 €", "EUR", "de", 125050),
    ("1,250.50", "EUR", "de", 125050),
    ("1.234,56", "EUR", "en", 123456),
    ("1.250", "EUR", "de", 125000),
    ("1,250", "USD", "en", 125000),
    ("49.99", "EUR", "de", 4999),
    ("12,5", "USD", "en", 1250),
    (".5", "USD", "en", 50),
    ("¥5000", "JPY", "en", 5000),
    ("5.000", "JPY", "de", 5000),
    ("5,000", "JPY", "en", 5000),
    ("1.250.000", "JPY", "de", 1250000),
    ("1.234", "KWD", "en", 1234),
    ("1,234", "KWD", "de", 1234),
    ("1.234,567", "KWD", "de", 1234567),
    ("0", "USD", "en", "Enter an amount above zero."),
    ("0,00", "EUR", "de", "Enter an amount above zero."),
    ("$", "USD", "en", "Enter an amount."),
    ("99999999999999999999", "USD", "en", "That amount is too large."),
]


def test_money_input_table_refuses_every_reading_it_would_have_to_guess(bare_page):
    # given the panel's formatting module
    bare_page.goto("/static/panel/panel.css")

    # when every row of the table is parsed in its language with its currency's exponent
    rows = [[text, cur, EXPONENTS[cur], lang] for text, cur, lang, _ in TABLE]
    results = bare_page.evaluate(
        """async (rows) => {
            const f = await import('/static/panel/format.js');
            return rows.map(([text, cur, exp, lang]) => f.parseMajor(text, cur, exp, lang));
        }""",
        rows,
    )

    # then each gives exactly the expected minor units or refusal (never a guess)
    def wanted(lang, expected):
        if isinstance(expected, int):
            return {"ok": True, "minor": expected}
        if expected is MALFORMED:
            example = "49,99" if lang == "de" else "49.99"
            return {"ok": False, "error": f"Enter a number, such as 50 or {example}."}
        return {"ok": False, "error": expected}

    wrong = [
        (text, cur, lang, got)
        for (text, cur, lang, expected), got in zip(TABLE, results, strict=True)
        if got != wanted(lang, expected)
    ]
    assert wrong == []


def test_ambiguous_amounts_name_both_readings_in_the_agents_notation(bare_page):
    bare_page.goto("/static/panel/panel.css")
    results = bare_page.evaluate(
        """async () => {
            const f = await import('/static/panel/format.js');
            return [f.parseMajor('1,250', 'KWD', 3, 'en'), f.parseMajor('1.250', 'KWD', 3, 'de'),
                    f.parseMajor('1 250.500', 'KWD', 3, 'de')];
        }"""
    )
    assert results[0] == {
        "ok": False,
        "error": "“1,250” could mean KWD\u00a01,250.000 or KWD\u00a01.250: "
        "type the amount without a thousands separator.",
    }
    assert results[1] == {
        "ok": False,
        "error": "“1.250” could mean 1.250,000\u00a0KWD or 1,250\u00a0KWD: "
        "type the amount without a thousands separator.",
    }
    # space groups and one mark after them: the mark can only be the decimal point
    assert results[2] == {"ok": True, "minor": 1250500}
