"""The committed translation catalogs (issue 16): complete German, compiled, placeholders intact.

The compiled ``.mo`` files are committed (a fresh machine may lack GNU gettext; ``make
messages`` re-extracts and compiles them). For every catalog of the three areas — root
``locale/`` (templates and the panel's JavaScript: ``django`` and ``djangojs``),
``billing_app/locale/`` and ``helpdesk_connectors/locale/`` — this checks that

* the committed ``.mo`` holds exactly what its ``.po`` compiles to (read both with Babel and
  compare msgid → msgstr: a ``.po`` edited without ``msgfmt`` fails here);
* German has no untranslated and no fuzzy entry;
* every msgstr keeps its msgid's placeholders: ``%(name)s`` (Python and the JS
  ``interpolate(…, true)``), positional ``%s``/``%d`` and ``{name}``.

And that the panel is served its catalog: ``/jsi18n/<lang>/`` answers the German strings,
cacheable, and the panel page names its language and loads the catalog before its modules.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
AREAS = ["locale", "billing_app/locale", "helpdesk_connectors/locale"]
CATALOGS = sorted(p for area in AREAS for p in (ROOT / area).glob("*/LC_MESSAGES/*.po"))


def _key(message) -> tuple:
    msgid = message.id if isinstance(message.id, str) else tuple(message.id)
    return (message.context or "", msgid)


def _strings(message) -> tuple:
    return tuple(message.string) if isinstance(message.string, (list, tuple)) else (message.string,)


def _complete(message) -> bool:
    return all(_strings(message)) and "fuzzy" not in message.flags


def _read_po(path: Path):
    with open(path, "rb") as f:
        return read_po(f, locale=path.parent.parent.name)


def _placeholders(text: str) -> list[str]:
    named = re.findall(r"%\([A-Za-z_]\w*\)[sdif]", text)
    positional = re.findall(r"(?<!%)%[sdif]", text.replace("%%", ""))
    braces = re.findall(r"(?<!{){[A-Za-z_]\w*}(?!})", text)
    return sorted(named + positional + braces)


def test_the_catalogs_are_there():
    names = {str(p.relative_to(ROOT)) for p in CATALOGS}
    assert "locale/de/LC_MESSAGES/django.po" in names
    assert "locale/de/LC_MESSAGES/djangojs.po" in names
    assert "billing_app/locale/de/LC_MESSAGES/django.po" in names
    assert "helpdesk_connectors/locale/de/LC_MESSAGES/django.po" in names


@pytest.mark.parametrize("po_path", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_committed_mo_is_what_the_po_compiles_to(po_path):
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), f"{mo_path.relative_to(ROOT)} is missing: run make messages"
    po = _read_po(po_path)
    with open(mo_path, "rb") as f:
        mo = read_mo(f)
    # msgfmt leaves out the header, untranslated and fuzzy entries.
    expected = {_key(m): _strings(m) for m in po if m.id and _complete(m)}
    compiled = {_key(m): _strings(m) for m in mo if m.id}
    missing = sorted(set(expected) - set(compiled), key=str)
    extra = sorted(set(compiled) - set(expected), key=str)
    changed = sorted(
        (k for k in set(expected) & set(compiled) if expected[k] != compiled[k]), key=str
    )
    assert not (missing or extra or changed), (
        f"{mo_path.relative_to(ROOT)} is not its .po compiled (run make messages): "
        f"missing {missing[:5]}, extra {extra[:5]}, different {changed[:5]}"
    )


@pytest.mark.parametrize(
    "po_path",
    [p for p in CATALOGS if p.parent.parent.name == "de"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_german_is_complete(po_path):
    po = _read_po(po_path)
    untranslated = [_key(m)[1] for m in po if m.id and not all(_strings(m))]
    fuzzy = [_key(m)[1] for m in po if m.id and "fuzzy" in m.flags]
    assert not untranslated, f"{po_path.relative_to(ROOT)}: untranslated {untranslated[:10]}"
    assert not fuzzy, f"{po_path.relative_to(ROOT)}: fuzzy {fuzzy[:10]}"


@pytest.mark.parametrize("po_path", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_translation_keeps_its_placeholders(po_path):
    wrong = []
    for message in _read_po(po_path):
        if not message.id or not _complete(message):
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = _strings(message)
        if len(ids) == 1:
            if _placeholders(strings[0]) != _placeholders(ids[0]):
                wrong.append((ids[0], strings[0]))
            continue
        # Plural forms: every form names what the English plural names (a singular form
        # may leave out the count, as English "one seat" might).
        plural = set(_placeholders(ids[1]))
        for form in strings:
            used = set(_placeholders(form))
            if (
                not used <= plural
                or not (set(_placeholders(ids[0])) - {"%(count)s", "%(count)d"}) <= used
            ):
                wrong.append((ids[1], form))
    assert not wrong, f"{po_path.relative_to(ROOT)}: placeholders differ in {wrong[:5]}"


def test_the_placeholder_check_sees_a_dropped_or_renamed_placeholder():
    assert _placeholders("%(count)s seats for %(customer)s") != _placeholders("%(count)s Plätze")
    assert _placeholders("Refund %(amount)s") != _placeholders("%(betrag)s erstatten")
    assert _placeholders("%(a)s and {b} and %s") == _placeholders("%s, {b}, %(a)s")
    assert _placeholders("100%% sure") == []


# --- the catalog the panel loads ------------------------------------------------------------------


def test_the_panel_gets_the_german_catalog_cacheable_from_its_own_origin(client):
    from billing_app.web.i18n import catalog_url

    response = client.get("/jsi18n/de/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    body = response.content.decode()
    assert '"Abrechnungskontext"' in body  # gettext("Billing context")
    assert (
        "immutable" in response["Cache-Control"] and "max-age=31536000" in response["Cache-Control"]
    )
    assert client.get("/jsi18n/xx/").status_code == 404
    # The URL names the compiled catalog's version, so a new translation is a new URL.
    assert re.fullmatch(r"/jsi18n/de/\?v=[0-9a-f]{12}", catalog_url("de-DE"))
    assert catalog_url("fr").startswith("/jsi18n/en/")


def test_the_panel_page_names_its_language_and_loads_the_catalog_before_its_modules():
    from django.template.loader import render_to_string
    from django.utils import translation

    with translation.override("de"):
        html = render_to_string("panel/panel.html", {"connector": "demo"})
    assert '<html lang="de">' in html
    catalog = re.search(r'<script defer src="(/jsi18n/de/\?v=[0-9a-f]+)"></script>', html)
    assert catalog, "the panel loads no catalog"
    assert html.index(catalog.group(0)) < html.index('type="module"')
    assert "<script>" not in html  # nothing inline: the strict script-src 'self' stays
    assert "Abrechnungskontext wird geladen" in html
