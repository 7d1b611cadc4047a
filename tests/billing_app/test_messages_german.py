"""Customer messages in the customer's language, and the agent's words in the agent's (issue 16).

A message to the customer (the playbook message after an action, the panel's playbook
endpoint) is written in the first of the customer's Stripe ``preferred_locales`` that
Billing Desk speaks, else in the agent's language. What the agent reads — refusals,
preconditions, the dry run's "Goes to a Manager for approval — …" — is in the agent's
language, taken from their helpdesk profile through the session.
"""

from __future__ import annotations

import pytest

from billing_app.catalog import Role
from billing_app.models import MirrorCustomer

from .actions_support import account_seed, next_key
from .test_notes_german import agent

REFUND = {
    "charge_id": "ch_acme_paid",
    "amount": 10000,
    "currency": "USD",
    "reason": "service_outage",
}


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


def prefers(workspace, customer_id: str, locales: list[str]) -> None:
    """The customer's Stripe object names these languages (the mirror keeps the object)."""
    row = MirrorCustomer.objects.get(workspace=workspace, stripe_id=customer_id)
    row.data = {**row.data, "preferred_locales": locales}
    row.save(update_fields=["data"])


def refund(client, params=None, ticket="T-1"):
    response = client.post(
        "/api/v1/actions/",
        {
            "kind": "issue_refund",
            "customer_id": "cus_acme",
            "ticket_id": ticket,
            "params": params or REFUND,
            "idempotency_key": next_key("msg"),
        },
        format="json",
    )
    return response


GERMAN_REFUND = (
    "Wir haben Ihre Erstattung über 100,00\xa0$ veranlasst. Die Gutschrift erscheint innerhalb "
    "von 5–7 Werktagen."
)
ENGLISH_REFUND = (
    "We've processed your refund of $100.00. The credit will appear within 5-7 business days."
)


def test_a_customer_who_prefers_german_gets_german_from_an_english_agent(workspace, acme):
    # given a customer whose Stripe preferred_locales is ["de-DE", "en"]
    prefers(workspace, "cus_acme", ["de-DE", "en"])
    manager = agent(workspace, Role.MANAGER, locale="en-US", name="Sam Lee")

    # when an English Manager refunds them
    response = refund(manager)

    # then the message for the customer is German, money German-formatted
    assert response.status_code == 201, response.json()
    assert response.json()["customer_message"] == GERMAN_REFUND
    # and the panel's playbook message for them is German too, its title as well
    playbook = manager.get("/api/v1/customers/cus_acme/playbook/refund/?variant=approved")
    assert playbook.status_code == 200, playbook.json()
    assert playbook.json()["message"] == GERMAN_REFUND
    assert playbook.json()["title"] == "Szenario 4: „Ich möchte eine Erstattung“ (genehmigt)"


@pytest.mark.parametrize(
    ("agent_locale", "expected"), [("de", GERMAN_REFUND), ("en-GB", ENGLISH_REFUND)]
)
def test_a_language_we_do_not_have_falls_back_to_the_agents(
    workspace, acme, agent_locale, expected
):
    # given a customer who prefers French, which Billing Desk does not speak
    prefers(workspace, "cus_acme", ["fr-FR"])
    manager = agent(workspace, Role.MANAGER, locale=agent_locale)

    # when a Manager refunds them, the message is in the Manager's language
    response = refund(manager)
    assert response.status_code == 201, response.json()
    assert response.json()["customer_message"] == expected


def test_no_preferred_locale_is_the_agents_language(workspace, acme):
    prefers(workspace, "cus_acme", [])
    response = refund(agent(workspace, Role.MANAGER, locale="de"))
    assert response.json()["customer_message"] == GERMAN_REFUND


def test_a_playbook_error_is_in_the_agents_language_not_the_customers(workspace, acme):
    # given a German-preferring customer without a duplicate charge on file for the message
    prefers(workspace, "cus_trial", ["de-DE"])
    english = agent(workspace, Role.L1, locale="en")
    german = agent(workspace, Role.L1, locale="de")

    url = "/api/v1/customers/cus_trial/playbook/charged_twice/"
    # then the refusal is written for the agent asking
    answer = english.get(url)
    assert answer.status_code == 422
    assert answer.json()["error"] == {
        "code": "no_duplicate_charge",
        "message": "No duplicate charge was found for this customer.",
        "details": {},
    }
    answer = german.get(url)
    assert answer.json()["error"]["code"] == "no_duplicate_charge"
    assert answer.json()["error"]["message"] == (
        "Für diesen Kunden wurde keine doppelte Zahlung gefunden."
    )


def test_a_precondition_is_refused_in_the_agents_language(workspace, acme):
    # given a German Manager refunding a disputed charge
    manager = agent(workspace, Role.MANAGER, locale="de")
    response = refund(manager, {**REFUND, "charge_id": "ch_acme_disputed"})

    # then the 422 keeps its code and says why in German
    assert response.status_code == 422, response.json()
    error = response.json()["error"]
    assert error["code"] == "charge_disputed"
    assert error["message"] == (
        "Diese Zahlung ist angefochten; das Anfechtungsverfahren entscheidet über das Geld, "
        "daher kann sie hier nicht erstattet werden."
    )


def test_a_matrix_refusal_is_in_the_agents_language(workspace, acme):
    response = refund(agent(workspace, Role.L1, locale="de"))
    assert response.status_code == 403, response.json()
    error = response.json()["error"]
    assert error["code"] == "not_permitted"
    assert error["message"].startswith("Nicht erlaubt: die Rolle L1 Agent darf nicht ")


def dry_run(client, params):
    response = client.post(
        "/api/v1/actions/dry-run/",
        {
            "kind": "issue_refund",
            "customer_id": "cus_acme",
            "ticket_id": "T-9",
            "params": params,
            "idempotency_key": next_key("dry"),
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    return response.json()


def test_the_dry_run_goes_to_a_manager_in_german(workspace, acme):
    # given a customer with 3 refunds in the last 90 days
    manager = agent(workspace, Role.MANAGER, locale="en")
    for _n in range(3):
        done = refund(manager, {**REFUND, "amount": 1_000})
        assert done.json()["status"] == "succeeded", done.json()

    # when a German and an English Manager ask what another refund would do
    german = dry_run(agent(workspace, Role.MANAGER, locale="de"), {**REFUND, "amount": 1_000})
    english = dry_run(manager, {**REFUND, "amount": 1_000})

    # then the code is the same; the words are each agent's
    assert german["code"] == english["code"] == "refund_pattern"
    assert english["headline"] == "Goes to a Manager for approval"
    assert english["message"] == (
        "Goes to a Manager for approval — refund pattern: 3 refunds in the last 90 days — "
        "Manager review required."
    )
    assert german["headline"] == "Geht zur Genehmigung an Manager"
    assert german["message"] == (
        "Geht zur Genehmigung an Manager – Erstattungsmuster: 3 Erstattungen in den letzten "
        "90 Tagen – Prüfung durch einen Manager erforderlich."
    )


def test_the_dry_run_says_happens_now_in_german(workspace, acme):
    answer = dry_run(agent(workspace, Role.MANAGER, locale="de"), REFUND)
    assert answer["outcome"] == "execute"
    assert answer["headline"] == "Wird sofort ausgeführt"
    assert (
        answer["message"]
        == "Wird sofort ausgeführt: die Rolle Manager darf „Erstattung ausstellen“."
    )


# --- every user-visible string of the actions, notes and messages is translatable -------------
#
# The Python half of "a test fails when a user-visible string is not translatable" for these
# modules (tests/test_translatable_strings.py checks the panel's JS and templates): an error,
# a policy reason or a refusal is never a bare literal or an f-string, every text marked for
# translation has its German, and everything said about an action — its lines, the playbook's
# wording, a note's frame — reads differently in German.

OWNED = [
    "billing_app/action_words.py",
    "billing_app/playbook.py",
    "billing_app/policy.py",
    "billing_app/errors.py",
    "billing_app/services/actions",
    "billing_app/services/notes.py",
    "billing_app/services/note_templates.py",
    "billing_app/services/playbook_templates.py",
    "billing_app/services/approvals.py",
    "billing_app/selectors/action_messages.py",
    "billing_app/selectors/action_details.py",
    "billing_app/selectors/actions.py",
    "billing_app/selectors/approvals.py",
    "billing_app/selectors/playbook.py",
    "billing_app/selectors/playbook_templates.py",
    "billing_app/api",
]
# Constructors whose text reaches a person (an agent, an approver, an admin, a customer),
# with the position of that text.
SAID = {
    "BillingDeskError": 0,
    "ValidationFailed": 0,
    "NotFound": 0,
    "NotPermitted": 0,
    "Conflict": 0,
    "PreconditionFailed": 0,
    "ProviderError": 0,
    "ProviderUnavailable": 0,
    "ProviderOutcomeUnknown": 0,
    "ActionOutcomeUnknown": 0,
    "ValidationError": 0,
    "Allow": 0,
    "Deny": 0,
    "NeedsApproval": 1,
    "Measured": 1,
    "DryRun": None,  # keywords headline/message
}
SAID_KEYWORDS = {"message", "headline", "reason", "display"}
# Texts that stay as they are on purpose: for the log, or for another program.
NOT_FOR_PEOPLE: set[tuple[str, str]] = set()  # (path, constructor), none so far
GETTEXT = {
    "_": (None, 0),
    "gettext": (None, 0),
    "gettext_lazy": (None, 0),
    "gettext_noop": (None, 0),
    "ngettext": (None, 0),
    "ngettext_lazy": (None, 0),
    "pgettext": (0, 1),
    "pgettext_lazy": (0, 1),
}
# Msgids whose German is the English (formats and words German shares).
SAME_IN_GERMAN = {
    "Status",
    "PDF",
    "Link",
    "%(label)s: %(text)s",
    "%(name)s (%(role)s)",
    "%(name)s (%(email)s)",
    "%(date)s, %(time)s UTC",
    "%(first)s; %(second)s",
    "%(amount)s (≈ %(base)s)",
}


def _sources():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    for entry in OWNED:
        path = root / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            yield str(file.relative_to(root)), file.read_text()


def _name(func) -> str:
    import ast

    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _is_bare_text(node) -> bool:
    import ast

    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(node.value.strip())
    if isinstance(node, ast.BinOp):  # "literal" + x, "literal %s" % x
        return _is_bare_text(node.left)
    if isinstance(node, ast.IfExp):
        return _is_bare_text(node.body) or _is_bare_text(node.orelse)
    return False


def test_no_error_reason_or_refusal_is_a_bare_literal():
    import ast

    bare, checked = [], 0
    for path, source in _sources():
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if name not in SAID or (path, name) in NOT_FOR_PEOPLE:
                continue
            checked += 1
            position = SAID[name]
            said = (
                [node.args[position]] if position is not None and len(node.args) > position else []
            )
            said += [k.value for k in node.keywords if k.arg in SAID_KEYWORDS]
            bare += [
                f"{path}:{node.lineno} {name}({ast.unparse(text)[:70]})"
                for text in said
                if _is_bare_text(text)
            ]
    assert checked > 100  # the scan reaches the modules' errors and reasons
    assert not bare, "words for people outside gettext:\n" + "\n".join(bare)


def _msgids():
    import ast

    for path, source in _sources():
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call) or _name(node.func) not in GETTEXT:
                continue
            context_at, text_at = GETTEXT[_name(node.func)]
            args = node.args
            if len(args) <= text_at or not isinstance(args[text_at], ast.Constant):
                continue
            context = args[context_at].value if context_at is not None else None
            plural = (
                args[1].value if _name(node.func).startswith("ngettext") and len(args) > 1 else None
            )
            yield path, node.lineno, context, args[text_at].value, plural


def test_every_marked_text_has_its_german():
    from django.utils import translation
    from django.utils.translation import gettext, ngettext, pgettext

    found = list(_msgids())
    assert len(found) > 250  # the scan sees the modules' texts
    missing = []
    with translation.override("de"):
        for path, line, context, text, plural in found:
            if plural is not None:
                german = ngettext(text, plural, 5)
                english = plural
            elif context is not None:
                german, english = pgettext(context, text), text
            else:
                german, english = gettext(text), text
            if german == english and text not in SAME_IN_GERMAN:
                missing.append(f"{path}:{line} {text!r}")
    assert not missing, "no German for:\n" + "\n".join(missing)


def test_every_action_reads_differently_in_german():
    from django.utils import translation

    from billing_app.action_words import action_lines
    from billing_app.catalog import ActionKind
    from billing_app.services.note_templates import SAMPLE_NAMES, SAMPLE_PARAMS, SAMPLE_RESULT
    from billing_app.vocabulary import action_label

    result = {
        **SAMPLE_RESULT,
        "status": "active",
        "method": "email",
        "trial_end": "2026-04-01T00:00:00+00:00",
        "grace_until": "2026-04-01T00:00:00+00:00",
        "expires_at": "2026-04-01T00:00:00+00:00",
        "ending_balance": {"amount": -5000, "currency": "USD"},
        "mrr_delta": 12000,
        "mrr_currency": "USD",
        "direction": "upgrade",
        "paused": {"behavior": "void", "resumes_at": "2026-04-01T00:00:00+00:00"},
        "was_ending_at": "2026-04-01T00:00:00+00:00",
    }

    def said(language: str, kind: ActionKind) -> list[tuple[str, str]]:
        params = SAMPLE_PARAMS[kind.value]
        with translation.override(language):
            return action_lines(
                kind,
                params,
                amount=params.get("amount"),
                currency=str(params.get("currency", "")),
                result=result,
                names=SAMPLE_NAMES,
            )

    same = []
    for kind in ActionKind:
        english, german = said("en", kind), said("de", kind)
        assert english and len(english) == len(german), kind
        with translation.override("en"):
            label = str(action_label(kind))
        with translation.override("de"):
            assert str(action_label(kind)) != label, kind
        for (label_en, _text_en), (label_de, _text_de) in zip(english, german, strict=True):
            if label_en == label_de and label_en not in SAME_IN_GERMAN:
                same.append(f"{kind.value}: {label_en}")
    assert not same, "labels not translated:\n" + "\n".join(same)


def test_every_playbook_message_reads_differently_in_german():
    from django.utils import translation

    from billing_app.playbook import (
        ONBOARDING_MESSAGE,
        ONBOARDING_NOTE,
        TEMPLATES,
        Scenario,
        _fields,
    )
    from billing_app.services.note_templates import DEFAULT_BODIES

    texts = [t.text for t in TEMPLATES.values()] + [t.title for t in TEMPLATES.values()]
    texts += [ONBOARDING_MESSAGE, ONBOARDING_NOTE, *DEFAULT_BODIES.values()]
    assert len(TEMPLATES) == len(Scenario)
    for text in texts:
        with translation.override("en"):
            english = str(text)
        with translation.override("de"):
            german = str(text)
        assert german != english
        # the German wording fills from the same data (an admin's override is checked
        # against these names)
        assert sorted(_fields(german.replace("[[", "").replace("]]", ""))) == sorted(
            _fields(english.replace("[[", "").replace("]]", ""))
        )
