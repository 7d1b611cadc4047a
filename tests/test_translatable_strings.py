"""A user-visible string that is not translatable fails here (issue 16): the JS and template part.

The panel's and the demo host's ES modules (``static/panel/*.js``, ``static/demo/*.js``) are
read token by token, and every string literal (and the text of every template literal) is
judged:

* a literal inside ``gettext(…)``, ``ngettext(…)`` or ``pgettext(…)`` is translatable;
* a literal that reads as prose (two words, a capitalised word, a sentence's punctuation)
  anywhere else is not, wherever it goes;
* a literal with any letter in a place that puts text in the DOM is not either: the text
  arguments of the element helpers (``h(tag, attrs, ...children)`` in dom.js, ``button``,
  ``banner``, ``row``, ``section``, ``statusBadge``… in widgets.js), ``live()`` (the
  aria-live announcer), ``showFatal``/``showEmpty``, ``new Error(…)`` (its message is shown
  by ``errorText``), an assignment to ``textContent``/``innerText``/``title``/``placeholder``,
  and the values of the properties that become text (``title``, ``placeholder``,
  ``aria-label``, ``label``, ``help``, ``effect``…).

Templates (``templates/panel``, ``approvals``, ``registration``, ``demo``, ``dashboard``)
may show text only through ``{% translate %}``/``{% blocktranslate %}`` (or ``_("…")`` in a
filter argument): what is left once those, the other tags, variables, comments, ``<style>``
and ``<script>`` are taken out must hold no words, in text nodes nor in the attributes a
person reads (``title``, ``placeholder``, ``aria-label``, ``alt``, ``label``).

The checkers are tested on small bad samples too, so a checker that sees nothing fails.
The Python part (gettext in billing_app and helpdesk_connectors) is tested beside that code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JS_FILES = sorted([*ROOT.glob("static/panel/*.js"), *ROOT.glob("static/demo/*.js")])
TEMPLATE_DIRS = ["panel", "approvals", "registration", "demo", "dashboard"]
TEMPLATE_FILES = sorted(p for d in TEMPLATE_DIRS for p in (ROOT / "templates" / d).glob("*.html"))

GETTEXT_CALLS = {"gettext", "ngettext", "pgettext", "npgettext", "gettext_noop"}
# Call → which argument positions are text for people.
SINK_CALLS = {
    "h": lambda i: i >= 2,
    "button": lambda i: i == 0,
    "banner": lambda i: i in (1, 2),
    "row": lambda i: i in (0, 1),
    "section": lambda i: i == 0,
    "statusBadge": lambda i: i == 1,
    "live": lambda i: i == 0,
    "showFatal": lambda i: i == 0,
    "showEmpty": lambda i: i == 0,
    "propose": lambda i: i == 1,
    "replyBlock": lambda i: i == 0,
    "messageBox": lambda i: i == 0,
    "Error": lambda i: i == 0,
    "ApiError": lambda i: i == 2,
    "createTextNode": lambda i: i == 0,
    "append": lambda i: True,
    "prepend": lambda i: True,
    "replaceChildren": lambda i: True,
    "alert": lambda i: i == 0,
    "confirm": lambda i: i == 0,
}
SINK_PROPS = {
    "title", "placeholder", "aria-label", "alt", "label", "help", "effect", "headline",
    "messageHelp", "expiredMessage", "textContent", "innerText",
}  # fmt: skip
SINK_ASSIGNED = {"textContent", "innerText", "title", "placeholder", "ariaLabel"}
# Arguments and properties that are never text for people: selectors, attribute names and
# the values of machine-read attributes.
NOT_TEXT_CALLS = {
    "querySelector", "querySelectorAll", "closest", "matches", "getElementById", "setAttribute",
    "removeAttribute", "addEventListener", "startsWith", "endsWith", "includes", "split", "join",
}  # fmt: skip
NOT_TEXT_PROPS = {
    "rel",
    "target",
    "type",
    "autocomplete",
    "inputmode",
    "role",
    "class",
    "id",
    "name",
    "href",
}
# Literals that are prose-shaped but are not words for people: protocol and key names,
# and the product's name (never translated); in templates also the time zone and file
# format names.
TECHNICAL = {
    "Bearer", "Accept", "Content-Type", "Authorization", "Escape", "ArrowRight", "ArrowLeft",
    "Home", "End", "Billing Desk", "GET", "POST",
}  # fmt: skip
TEMPLATE_TECHNICAL = ("Billing Desk", "UTC", "JSON", "CSV")


@dataclass
class Token:
    kind: str  # "str", "tpl", "id", "punct", "num", "regex"
    text: str
    line: int
    frames: tuple  # the enclosing brackets, innermost last: (char, callee, arg index, key)


def tokenize(source: str) -> list[Token]:
    """JS tokens with, for each, the brackets it sits in (call name and argument index).

    Enough of JavaScript for the panel's modules: comments, strings, template literals
    (their ``${…}`` read as code), regular-expression literals, brackets and commas.
    """
    tokens: list[Token] = []
    frames: list[list] = []
    i, n, line = 0, len(source), 1

    def prev_significant() -> Token | None:
        return tokens[-1] if tokens else None

    def regex_allowed() -> bool:
        prev = prev_significant()
        if prev is None:
            return True
        if prev.kind in ("str", "tpl", "num", "regex"):
            return False
        if prev.kind == "id":
            return prev.text in {"return", "typeof", "case", "of", "in", "void", "delete", "new"}
        return prev.text not in {")", "]", "}"}

    def push(kind: str, text: str) -> None:
        tokens.append(Token(kind, text, line, tuple(tuple(f) for f in frames)))

    template_stack: list[int] = []  # brace depth at each ${ … } being read
    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif source.startswith("//", i):
            i = source.find("\n", i)
            i = n if i < 0 else i
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            line += source.count("\n", i, end)
            i = end + 2
        elif c in "\"'":
            j = i + 1
            out = []
            while source[j] != c:
                if source[j] == "\\":
                    out.append(source[j : j + 2])
                    j += 2
                else:
                    out.append(source[j])
                    j += 1
            push("str", "".join(out))
            i = j + 1
        elif c == "`" or (c == "}" and template_stack and len(frames) == template_stack[-1]):
            # A template literal's text up to its end or its next ${.
            if c == "}":
                template_stack.pop()
                frames.pop()
            j = i + 1
            out = []
            while True:
                if source[j] == "\\":
                    out.append(source[j : j + 2])
                    j += 2
                elif source[j] == "`":
                    push("tpl", "".join(out))
                    i = j + 1
                    break
                elif source.startswith("${", j):
                    push("tpl", "".join(out) + "\x00")
                    frames.append(["${", None, 0, None])
                    template_stack.append(len(frames))
                    i = j + 2
                    break
                else:
                    if source[j] == "\n":
                        line += 1
                    out.append(source[j])
                    j += 1
        elif c == "/" and regex_allowed():
            j = i + 1
            in_class = False
            while True:
                ch = source[j]
                if ch == "\\":
                    j += 2
                    continue
                if ch == "[":
                    in_class = True
                elif ch == "]":
                    in_class = False
                elif ch == "/" and not in_class:
                    break
                j += 1
            j += 1
            while j < n and source[j].isalpha():
                j += 1
            push("regex", source[i:j])
            i = j
        elif c.isalpha() or c in "_$":
            j = i
            while j < n and (source[j].isalnum() or source[j] in "_$"):
                j += 1
            push("id", source[i:j])
            i = j
        elif c.isdigit():
            j = i
            while j < n and (source[j].isalnum() or source[j] in "._"):
                j += 1
            push("num", source[i:j])
            i = j
        else:
            if c in "([{":
                prev = prev_significant()
                callee = prev.text if c == "(" and prev is not None and prev.kind == "id" else None
                push("punct", c)
                frames.append([c, callee, 0, None])
            elif c in ")]}":
                if frames:
                    frames.pop()
                push("punct", c)
            elif c == ",":
                push("punct", c)
                if frames:
                    frames[-1][2] += 1
                    frames[-1][3] = None
            elif c == ":" and frames and frames[-1][0] == "{":
                prev = prev_significant()
                before = tokens[-2] if len(tokens) > 1 else None
                if (
                    prev is not None
                    and prev.kind in ("id", "str")
                    and before is not None
                    and before.text in "{,"
                ):
                    frames[-1][3] = prev.text
                push("punct", c)
            else:
                push("punct", c)
            i += 1
    return tokens


def _prose(text: str) -> bool:
    """Reads as words for a person: two words, a capitalised word, or a sentence's end."""
    s = text.replace("\x00", " ").strip()
    if not re.search(r"[A-Za-z]{2,}", s) or s in TECHNICAL:
        return False
    if re.match(r"^[\[#.]|^bd-|^demo-|^data-|^https?:", s) or "[data-" in s:
        return False  # a selector, a class or an address
    if re.fullmatch(r"[\w./:?=&%-]+", s) and not re.match(r"^[A-Z][a-z]+$", s):
        return False  # an identifier, a path or a URL
    return bool(
        re.search(r"[A-Za-z]{2,}[,;:]?\s+[A-Za-z(“\"']", s)
        or re.match(r"^[A-Z][a-z]+(?:[.…!?:]|$)", s)
        or re.search(r"[a-z][.…!?]$", s)
    )


def _has_letters(text: str) -> bool:
    s = text.replace("\x00", "").strip()
    return bool(re.search(r"[A-Za-z]", s)) and s not in TECHNICAL


def _in_gettext(token: Token) -> bool:
    return any(frame[0] == "(" and frame[1] in GETTEXT_CALLS for frame in token.frames[-1:])


def _sink(tokens: list[Token], index: int) -> str | None:
    """Where the literal at ``index`` puts its text, when that is the DOM; else None."""
    token = tokens[index]
    frame = token.frames[-1] if token.frames else None
    if frame and frame[0] == "(" and frame[1] in SINK_CALLS and SINK_CALLS[frame[1]](frame[2]):
        return f"{frame[1]}() argument {frame[2] + 1}"
    if frame and frame[0] == "{" and frame[3] in SINK_PROPS:
        return f"the {frame[3]} property"
    # An assignment to textContent & co: the statement's tokens before it, at its depth.
    depth = len(token.frames)
    for j in range(index - 1, -1, -1):
        prev = tokens[j]
        if len(prev.frames) < depth or prev.text in {";", "{", "}"}:
            break
        if len(prev.frames) == depth and prev.text == "=" and j > 0:
            target = tokens[j - 1]
            if target.kind == "id" and target.text in SINK_ASSIGNED:
                return f"{target.text} ="
            break
    return None


def untranslated_in_js(source: str) -> list[tuple[int, str, str]]:
    """(line, literal, why) for each literal that shows text without passing through gettext."""
    tokens = tokenize(source)
    found = []
    for index, token in enumerate(tokens):
        if token.kind not in ("str", "tpl") or _in_gettext(token):
            continue
        frame = token.frames[-1] if token.frames else None
        if frame and (
            (frame[0] == "(" and frame[1] in NOT_TEXT_CALLS)
            or (frame[0] == "{" and frame[3] in NOT_TEXT_PROPS)
        ):
            continue
        prev = tokens[index - 1] if index else None
        if prev is not None and prev.kind == "id" and prev.text in {"from", "import"}:
            continue  # a module path
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        if (
            token.kind == "str"
            and nxt is not None
            and nxt.text == ":"
            and token.frames
            and token.frames[-1][0] == "{"
        ):
            continue  # an object key
        if _prose(token.text):
            found.append((token.line, token.text.replace("\x00", "${…}").strip(), "reads as prose"))
            continue
        where = _sink(tokens, index)
        if (
            where
            and _has_letters(token.text)
            and not re.fullmatch(r"[a-z][a-z0-9_]*", token.text.strip())
        ):
            found.append(
                (token.line, token.text.replace("\x00", "${…}").strip(), f"shown through {where}")
            )
    return found


READ_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt", "label")


def untranslated_in_template(source: str) -> list[str]:
    """The words a template shows that no {% translate %}/{% blocktranslate %} carries."""
    text = re.sub(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", " ", source, flags=re.S)
    text = re.sub(r"{#.*?#}", " ", text, flags=re.S)
    text = re.sub(r"<(style|script)\b[^>]*>.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r"{%\s*blocktranslate\b.*?{%\s*endblocktranslate\s*%}", " ", text, flags=re.S)
    text = re.sub(r"{%.*?%}", " ", text, flags=re.S)
    text = re.sub(r"{{.*?}}", " ", text, flags=re.S)
    found = []
    for attr in READ_ATTRIBUTES:
        for value in re.findall(rf'\s{attr}="([^"]*)"', text):
            if re.search(r"[A-Za-z]{2,}", value):
                found.append(f'{attr}="{value.strip()}"')
    visible = re.sub(r"<[^>]*>", "\n", text)
    visible = re.sub(r"&[a-z]+;|&#\d+;", " ", visible)
    for chunk in visible.split("\n"):
        chunk = chunk.strip()
        words = chunk
        for name in TEMPLATE_TECHNICAL:
            words = words.replace(name, " ")
        if re.search(r"[A-Za-z]{2,}", words):
            found.append(chunk)
    return found


# --- the checkers on small bad samples: each must be caught ------------------------------------

BAD_JS = r"""
import { gettext, interpolate } from "./i18n.js";
const label = gettext("Refund");
el.append(h("p.bd-muted", {}, "No payments yet."));
el.append(h("p", {}, gettext("Fine"), cond ? "Refreshing…" : gettext("Refresh")));
button("Copy", () => copy());
banner("danger", gettext("Title"), `Last synced ${age(x)}.`);
node.textContent = ok ? "Copied" : gettext("Select and copy");
const field = { name: "amount", label: "Credit amount", type: "money" };
live(`${count} more loaded`);
throw new Error("This frame cannot reply.");
const ok2 = interpolate(gettext("%(n)s seats"), { n }, true);
const re = /Paid|"not a string"/;
const key = { "aria-label": gettext("Panel views"), "data-testid": "panel" };
"""


def test_the_js_checker_catches_untranslated_text_and_passes_gettext():
    found = untranslated_in_js(BAD_JS)
    texts = {text for _line, text, _why in found}
    assert texts == {
        "No payments yet.",
        "Refreshing…",
        "Copy",
        "Last synced ${…}",
        "Copied",
        "Credit amount",
        "more loaded",
        "This frame cannot reply.",
    }, found


def test_the_template_checker_catches_text_outside_translate():
    bad = """{% load i18n %}<html lang="{{ LANGUAGE_CODE }}"><head><title>Approvals</title>
    <style>body { font: 15px system-ui; }</style></head>
    <body>{% comment %}Not shown{% endcomment %}
    <h1>{% translate "Approvals queue" %}</h1>
    <p>{% blocktranslate with n=count %}{{ n }} waiting{% endblocktranslate %}</p>
    <nav aria-label="Pages">{{ page }}</nav>
    <input placeholder="{% translate 'Search' %}">
    <p class="muted">Nothing decided yet.</p></body></html>"""
    assert untranslated_in_template(bad) == [
        'aria-label="Pages"',
        "Approvals",
        "Nothing decided yet.",
    ]


# --- the project's files ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_user_visible_string_in_the_panel_js_is_translatable(path):
    found = untranslated_in_js(path.read_text(encoding="utf-8"))
    assert not found, "\n".join(
        f"{path.name}:{line}: {text!r} ({why})" for line, text, why in found
    )


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_user_visible_string_in_the_templates_is_translatable(path):
    found = untranslated_in_template(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: " + "; ".join(repr(t) for t in found)


def test_the_scan_covers_the_panel_and_the_templates():
    names = {p.name for p in JS_FILES}
    assert {"context.js", "forms.js", "format.js", "host.js", "widgets.js"} <= names
    assert {"panel.html", "list.html", "detail.html", "login.html", "host.html"} <= {
        p.name for p in TEMPLATE_FILES
    }
