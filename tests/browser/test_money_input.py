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
