"""The dashboard and the monthly report in German (issue 16): every label the Python side
computes — categories, actions, statuses, approval paths, health components, response
times, month names, recommendations and their evidence, chart labels — follows the
reader's language (``Accept-Language`` through ``LocaleMiddleware``), numbers and
percentages written the German way; the English pages stay as they were.

The January 2026 data set is ``dashboard_data.build_january`` (see ``test_dashboard.py``).
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import translation

from billing_app.models import TicketCategory
from billing_app.selectors.dashboard import (
    ACTION_LABELS,
    APPROVAL_PATHS,
    CATEGORY_LABELS,
    HEALTH_COMPONENTS,
    RECOMMENDATION_RULES,
    RESPONSE_TARGETS,
    STATUS_LABELS,
    recommendations_derive,
)
from billing_app.selectors.dashboard.actions import SUCCESS_STATUS_LABELS
from billing_app.selectors.months import Month

from .dashboard_data import build_january, build_noise, self_service_state
from .two_factor_support import verified_login

# Label keys of the figures: every value under one of them is a text shown to the reader.
LABEL_KEYS = {"label", "status_label", "success_status_label", "text", "evidence", "month_label"}
# Labels German writes exactly like English (proper names, loanwords).
SAME_IN_GERMAN = {"Sandbox"}


@pytest.fixture(autouse=True)
def _no_language_left_active():
    """A request activates its language for the thread; the next test starts without it."""
    yield
    translation.deactivate()


@pytest.fixture
def january(workspace, make_workspace):
    build_january(workspace)
    build_noise(make_workspace("globex"))
    return workspace


@pytest.fixture
def staff_client(client):
    user = User.objects.create_user(username="boss", password="x-unused-x", is_superuser=True)
    verified_login(client, user)
    return client


def labels(figures: Any, path: str = "") -> dict[str, str]:
    """Every label of the figures, by its path (``categories.3.label``)."""
    found: dict[str, str] = {}
    if isinstance(figures, dict):
        for key, value in figures.items():
            where = f"{path}.{key}" if path else str(key)
            if key in LABEL_KEYS and isinstance(value, str):
                found[where] = value
            else:
                found |= labels(value, where)
    elif isinstance(figures, list):
        for i, value in enumerate(figures):
            found |= labels(value, f"{path}.{i}")
    return found


def page(client, url: str, params: dict[str, str], language: str):
    response = client.get(url, params, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert response["Content-Language"] == language
    return response, html_lib.unescape(response.content.decode())


def test_dashboard_page_in_german_has_no_english_label(january, staff_client):
    params = {"month": "2026-01", "workspace": "acme"}
    en, en_html = page(staff_client, "/dashboard/", params, "en")
    de, de_html = page(staff_client, "/dashboard/", params, "de")
    en_labels, de_labels = labels(en.context["figures"]), labels(de.context["figures"])
    nav = {f"nav.{k}": v["label"] for k, v in de.context["nav"].items()}

    # the same labels, each one in German (a new untranslated label fails here)
    assert en_labels.keys() == de_labels.keys()
    assert len(de_labels) > 40
    untranslated = {
        path: text
        for path, text in de_labels.items()
        if text == en_labels[path] and text not in SAME_IN_GERMAN
    }
    assert untranslated == {}
    # and every one of them is on the German page
    for text in (*de_labels.values(), *nav.values()):
        assert text in de_html
    # no English label of the page is left on the German page (the English page's own
    # words, where German writes them otherwise)
    leftover = {
        text
        for text in en_labels.values()
        if text not in SAME_IN_GERMAN and text not in set(de_labels.values())
        if re.search(rf"(?<![\w-]){re.escape(text)}(?![\w-])", de_html)
    }
    assert leftover == set()

    # what the German reader reads
    figures = de.context["figures"]
    categories = {c["key"]: c["label"] for c in figures["categories"]}
    assert categories["overcharge_dispute"] == "Reklamation einer Überberechnung"
    assert categories["tax_question"] == "Steuerfrage"
    components = {c["key"]: c for c in figures["health"]["components"]}
    assert components["webhook_delivery"]["label"] == "Webhook-Zustellung"
    assert components["refund_processing"]["label"] == "Erstattungsabwicklung"
    assert {c["status_label"] for c in components.values()} <= {
        "In Betrieb",
        "Beeinträchtigt",
        "Ausfall",
        "Keine Daten",
    }
    paths = {p["key"]: p["label"] for p in figures["refunds"]["by_approval_path"]}
    assert paths["manager"] == "Vom Manager genehmigt" and paths["denied"] == "Abgelehnt"
    actions = {a["key"]: a for a in figures["actions"]["rows"]}
    assert actions["issue_refund"]["label"] == "Erstattung ausgeführt"
    assert {a["success_status_label"] for a in actions.values()} <= {
        "im Ziel",
        "unter dem Ziel",
        "noch nicht ausgeführt",
    }
    # months: the heading, the navigation and the six-month trend, as German writes them
    assert "Abrechnungs" in de_html  # the template's own words are German too
    assert "Januar 2026" in de_html and "January 2026" not in de_html
    assert nav == {"nav.previous": "Dezember 2025", "nav.next": "Februar 2026"}
    assert [t["label"] for t in figures["payment_failures"]["trend"]] == [
        "Aug. 2025",
        "Sept. 2025",
        "Okt. 2025",
        "Nov. 2025",
        "Dez. 2025",
        "Jan. 2026",
    ]
    # numbers in the computed texts: decimal comma, a space before the percent sign
    recommendations = {r["rule"]: r for r in figures["recommendations"]}
    assert recommendations["invoice_preview"]["evidence"] == (
        "1 Reklamation einer Überberechnung (10,0\u00a0% der Abrechnungstickets)"
    )
    assert recommendations["webhook_delivery"]["evidence"] == (
        "1 von 9 Webhook-Ereignissen fehlgeschlagen (88,89\u00a0% zugestellt)"
    )
    assert "10,0\u00a0%" in de_html  # the category chart's share
    assert "(Ziel <3.000 ms)" in de_html  # the response-time chart's target
    assert "Ziel 3.000" in de_html and "3,000" not in de_html  # the chart's target tick
    # and the English page is the English one
    assert "Billing support dashboard — January 2026" in en_html
    assert "(target <3,000 ms)" in en_html and "10.0%" in en_html


def test_monthly_report_page_in_german_has_no_english_label(january, staff_client):
    en, en_html = page(staff_client, "/reports/monthly/2026-01/", {"workspace": "acme"}, "en")
    de, de_html = page(staff_client, "/reports/monthly/2026-01/", {"workspace": "acme"}, "de")
    en_labels, de_labels = labels(en.context["report"]), labels(de.context["report"])

    assert en_labels.keys() == de_labels.keys()
    untranslated = {
        path: text
        for path, text in de_labels.items()
        if text == en_labels[path] and text not in SAME_IN_GERMAN
    }
    assert untranslated == {}
    for rec in de.context["report"]["recommendations"]:
        assert rec["text"] in de_html and rec["evidence"] in de_html
    assert de.context["report"]["month_label"] == "Januar 2026"
    assert "Januar 2026" in de_html and "January 2026" not in de_html
    assert "Januar 2026" in de_html and "Dezember 2025" in de_html  # heading, navigation
    assert "Billing support monthly report — January 2026" in en_html


def _rule_texts() -> list[str]:
    """Every recommendation's English text (a rule's one ``text`` or its ``texts`` by variant)."""
    return [
        text
        for rule in RECOMMENDATION_RULES.values()
        for text in (rule["texts"].values() if "texts" in rule else [rule["text"]])
    ]


def test_every_label_table_reads_german_at_call_time():
    # given tables defined at import (English), read under each language
    with translation.override("de"):
        german = {
            "categories": [CATEGORY_LABELS[c.value] for c in TicketCategory],
            "status": list(STATUS_LABELS.values()),
            "success": list(SUCCESS_STATUS_LABELS.values()),
            "actions": [translation.gettext(label) for _, label in ACTION_LABELS],
            "paths": [translation.gettext(label) for _, label in APPROVAL_PATHS],
            "components": [translation.gettext(label) for _, label, _ in HEALTH_COMPONENTS],
            "responses": [translation.gettext(label) for _, label, _, _ in RESPONSE_TARGETS],
            "rules": [translation.gettext(text) for text in _rule_texts()],
        }
    translation.deactivate()
    english = {
        "categories": [CATEGORY_LABELS[c.value] for c in TicketCategory],
        "status": list(STATUS_LABELS.values()),
        "success": list(SUCCESS_STATUS_LABELS.values()),
        "actions": [label for _, label in ACTION_LABELS],
        "paths": [label for _, label in APPROVAL_PATHS],
        "components": [label for _, label, _ in HEALTH_COMPONENTS],
        "responses": [label for _, label, _, _ in RESPONSE_TARGETS],
        "rules": _rule_texts(),
    }

    # then English is the model's words, and every German label differs from its source
    assert english["categories"] == [c.label for c in TicketCategory]
    for table, words in german.items():
        for de, en in zip(words, english[table], strict=True):
            assert de != en or de in SAME_IN_GERMAN, (table, en)
    # the credit bands keep their placeholders
    credit = dict(ACTION_LABELS)["apply_credit_medium"]
    with translation.override("de"):
        assert translation.gettext(credit).format(small="100 $", large="500 $") == (
            "Gutschrift erteilen (100 $–500 $)"
        )


def test_recommendations_not_in_the_data_set_in_german():
    # given figures that trigger the rules the January data set does not
    figures = {
        "payment_failures": {
            "count": 10,
            "churned_accounts": 2,
            "churn_pct_of_failures": 20.0,
            "churned_mrr": {"display": "100,00 $"},
            "reasons": [],
        },
        "actions": {
            "rows": [],
            "handling_seconds": 0,
            "total_time_ms": 0,
            "avg_approval_hours": 6.5,
            "approvals_decided": 12,
        },
        "tickets": {"resolution_within_target": False, "avg_resolution_minutes": 7.5},
        "categories": [
            {"key": "refund_request", "label": "x", "share_pct": 1.0, "tickets": 1},
            {"key": "overcharge_dispute", "label": "y", "share_pct": 1.0, "tickets": 1},
        ],
        "health": {
            "response_times": [
                {
                    "label": "Erstattungsabwicklung",
                    "avg_ms": 4123.4,
                    "target_ms": 3000,
                    "within_target": False,
                }
            ],
            "webhooks": {"success_rate_pct": 100.0, "failed": 0, "delivered": 1},
        },
        **self_service_state(),
    }
    for category in figures["categories"]:
        category["auto_resolved_pct"] = 90.0

    with translation.override("de"):
        german = {r["rule"]: r for r in recommendations_derive(figures)}
    with translation.override("en"):
        english = {r["rule"]: r for r in recommendations_derive(figures)}

    assert german["payment_failure_churn"]["evidence"] == (
        "2 Konten nach Zahlungsausfällen abgewandert (20,0\u00a0% von 10 Ausfällen, 100,00 $ MRR)"
        "; die Aufforderungen zur Kartenaktualisierung sind ausgeschaltet"
    )
    assert german["payment_failure_churn"]["text"] == (
        "Abwanderung nach Zahlungsausfällen senken: Aufforderungen zur Kartenaktualisierung "
        "einschalten (Django-Admin → Workspaces → Card prompts enabled)"
    )
    assert german["resolution_time"]["evidence"] == (
        "durchschnittliche Lösungszeit 7,5 min bei einem Ziel von 5 Minuten"
    )
    assert german["slow_operation"]["evidence"] == (
        "Erstattungsabwicklung: 4123 ms im Schnitt (Ziel <3000 ms)"
    )
    assert german["approval_time"]["evidence"] == (
        "Genehmigungen dauerten im Schnitt 6,5 Stunden (Entscheidungen: 12)"
    )
    assert english["resolution_time"]["evidence"] == (
        "average resolution 7.5 min against a 5-minute target"
    )
    assert english["slow_operation"]["evidence"] == (
        "Erstattungsabwicklung: 4123 ms avg (target <3000 ms)"
    )
    assert english["approval_time"]["evidence"] == (
        "approvals took 6.5 hours on average over 12 decisions"
    )
    for rule, rec in german.items():
        assert rec["text"] != english[rule]["text"]


def test_month_labels_follow_the_language():
    month = Month(2026, 3)
    with translation.override("de"):
        assert (month.label, month.short_label) == ("März 2026", "März 2026")
        assert Month(2026, 12).short_label == "Dez. 2026"
    with translation.override("en"):
        assert (month.label, month.short_label) == ("March 2026", "Mar 2026")
    with translation.override(None):  # no language active: English
        assert Month(2026, 5).label == "May 2026"
