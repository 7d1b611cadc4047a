"""The install guides, run: every command of ``docs/install-zendesk.md`` and
``docs/install-freshdesk.md``, in order, from a fresh server to the panel in a ticket.

What is run and how (the guides say the same to their readers):

* Commands are the lines of the guides' ```` ```sh ```` blocks. A block whose info string says
  ```` ```sh alternative ```` replaces the ``sh`` block before it: the guide is run once
  without the alternatives and once with each alternative in place of its block.
* ``python manage.py …`` runs through ``call_command`` (options parsed with ``shlex``, as
  the shell would), against the test database, with the variables the guide exported or
  prefixed in ``os.environ`` and the helpdesk and Stripe APIs answered by ``responses``
  with bodies shaped like the real APIs. Each command has a check of what the guide says it
  does (``AFTER``); a ``manage.py`` command without one fails the test.
* The configuration file the guide writes (a heredoc with ``$(…)``) is written under a
  temporary root with its command substitutions run, and the settings module is evaluated
  under exactly that environment, as a production process (no DEBUG, not testing) loads it:
  it must load, and ``check --deploy`` must pass with those settings. The values a process
  takes from it (public URL, allowed hosts, secret key, encryption keys) are then applied to
  the test's settings for the remaining steps.
* Other shell lines are checked against the project: ``pip install -e .`` against
  ``pyproject.toml``; ``systemctl enable`` must name units the guide shows, whose
  ``gunicorn``/``celery`` lines name a WSGI module and Celery app that exist (and the queue
  the settings use); ``curl`` to the server goes through Django's test client;
  ``chmod``/``cat``/``read``/``export``/``set``/``.`` do what they do. Absolute paths live
  under the test's temporary root.
* ``NOT_RUN`` lists what cannot be run here, with the reason. ``curl`` to the helpdesk's own
  API is not run either (no account): its host must be the guide's helpdesk and its basic
  auth the form the connector sends; a file it downloads (``-o``) is written with the answer
  that API gives.
* After the commands, the admin step (role mapping table) is posted to Django admin as the
  superuser the guide created, and the helpdesk opens the panel with what the built archive
  says: Zendesk posts a signed token to the archive's sidebar URL; Freshdesk's request
  template (from the built archive) asks for a session, then the app frame posts the panel.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
import time
import tomllib
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import jwt
import pytest
import responses
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from billing_app.models import AgentMembership, RoleMappingRule, Workspace
from helpdesk_connectors.models import Installation
from tests.billing_app.two_factor_support import verified_login
from tests.helpdesk_connectors.conftest import (
    FRESHDESK_ROLES,
    freshdesk_agent,
    freshdesk_group,
    zendesk_memberships,
    zendesk_user,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
PLACEHOLDER = re.compile(r"<([^<>\n]+)>")
SUPERUSER_PASSWORD = "guide-admin-password-8Qk2"

# Lines the test cannot run, by how they start, and why. Everything else is run or checked.
NOT_RUN = {
    "sudo apt-get install": "installs operating-system packages on the host",
    "sudo useradd": "creates a system user on the host",
    "sudo -u postgres": "creates the PostgreSQL role and database (the test has its own database)",
    "git clone": "fetches the repository over the network; the test runs in a checkout of it",
}


# --- reading the guides ---------------------------------------------------------------------


@dataclass
class Block:
    lang: str
    tags: frozenset[str]
    text: str
    line: int


def guide_text(name: str) -> str:
    return (DOCS / f"install-{name}.md").read_text()


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        info = match.group(1).split()
        found.append(
            Block(
                lang=info[0] if info else "",
                tags=frozenset(info[1:]),
                text=match.group(2),
                line=text.count("\n", 0, match.start()) + 1,
            )
        )
    return found


def sequences(text: str) -> dict[str, list[Block]]:
    """``main`` (no alternatives) and one run per alternative, in place of the block before it."""
    sh = [b for b in blocks(text) if b.lang == "sh"]
    main = [b for b in sh if "alternative" not in b.tags]
    runs = {"main": main}
    for i, block in enumerate(sh):
        if "alternative" in block.tags:
            replaced = sh[i - 1]
            assert "alternative" not in replaced.tags, f"line {block.line}: nothing to replace"
            runs[f"alternative at line {block.line}"] = [
                block if b is replaced else b for b in main
            ]
    return runs


def logical_lines(block: Block) -> list[tuple[str, str | None]]:
    """``(line, heredoc body or None)``: continuations joined, comments and blanks dropped."""
    lines = block.text.splitlines()
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        heredoc = re.search(r"<<(\w+)\s*$", line)
        if heredoc:
            body = []
            while lines[i] != heredoc.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            out.append((line[: heredoc.start()].strip(), "\n".join(body) + "\n"))
        else:
            out.append((line.strip(), None))
    return out


def markdown_table_after(text: str, header: str) -> dict[str, str]:
    """The two-column table whose header row is ``header`` → {first cell: second cell}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == header)
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1]
    return rows


def error_codes(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("## Common errors")
    codes = []
    for line in lines[start:]:
        if line.startswith("| `"):
            codes += re.findall(r"`([a-z_]+)`", line.split("|")[1])
    return codes


# --- the scenario each guide is run with -----------------------------------------------------


@dataclass
class Scenario:
    """What the reader types and what the outside world answers."""

    name: str
    placeholders: dict[str, str]
    typed: dict[str, str]  # read -rs VAR → what the admin types
    helpdesk_domain: str
    # curl -o FILE of a helpdesk URL: the answer the helpdesk gives (the admin downloads it)
    downloads: dict[str, str] = field(default_factory=dict)


ZENDESK_APP_ID = "818181"
ZENDESK_INSTALLATION_ID = "360001234"
STRIPE_KEY = "rk_live_51GuideRestrictedKey0000"
STRIPE_WEBHOOK_SECRET = "whsec_guideSigningSecret0000"


# --- running a guide ----------------------------------------------------------------------------


class GuideRun:
    """A tiny shell for the guides' commands (see the module docstring for what each does)."""

    def __init__(self, scenario, *, tmp_path, monkeypatch, settings, http, text):
        self.scenario = scenario
        self.tmp = tmp_path
        self.monkeypatch = monkeypatch
        self.settings = settings
        self.http = http
        self.text = text
        self.shell_env: dict[str, str] = {}
        self.allexport = False
        self.venv: str | None = None
        self.checkout: str | None = None
        self.cwd = "/"
        self.files: dict[str, str] = {}  # absolute guide path → content written by the guide
        self.guide_settings: dict[str, Any] | None = None
        self.outputs: dict[str, list[str]] = {}
        self.ran: list[str] = []
        self.not_run: list[str] = []
        self.ran_output = ""  # what echo showed the reader
        monkeypatch.chdir(self.real("/"))

    # paths: the guide's absolute paths live under the temporary root
    def absolute(self, path: str) -> str:
        return path if path.startswith("/") else os.path.normpath(f"{self.cwd}/{path}")

    def real(self, path: str) -> Path:
        real = self.tmp / self.absolute(path).lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        return real

    # text → words, as the shell would: placeholders, $(…), $VAR, then shlex
    def substitute(self, line: str) -> str:
        def placeholder(match: re.Match) -> str:
            key = match.group(1)
            assert key in self.scenario.placeholders, f"unknown placeholder <{key}> in: {line}"
            return self.scenario.placeholders[key]

        line = PLACEHOLDER.sub(placeholder, line)
        while "$(" in line:
            start = line.index("$(")
            depth, end = 0, start + 1
            for end in range(start + 1, len(line)):
                depth += {"(": 1, ")": -1}.get(line[end], 0)
                if depth == 0:
                    break
            inner = line[start + 2 : end]
            line = line[:start] + self.capture(inner) + line[end + 1 :]

        def variable(match: re.Match) -> str:
            name = match.group(1) or match.group(2)
            assert name in self.shell_env, f"${name} is used before it is set: {line}"
            return self.shell_env[name]

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", variable, line)

    def words(self, line: str) -> list[list[str]]:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
        lexer.whitespace_split = True
        commands, current = [], []
        for token in lexer:
            if token == ";":
                commands.append(current)
                current = []
            else:
                current.append(token)
        return [c for c in [*commands, current] if c]

    def capture(self, line: str) -> str:
        out = []
        for argv in self.words(self.substitute(line)):
            out.append(self.command(argv, line))
        return "".join(o for o in out if o).strip()

    def run_line(self, line: str, heredoc: str | None) -> None:
        for prefix, reason in NOT_RUN.items():
            if line.startswith(prefix):
                self.not_run.append(f"{line}  ({reason})")
                if line.startswith("git clone"):
                    self.checkout = self.absolute(self.words(line)[0][-1])
                return
        if heredoc is not None:
            argv = self.words(line)[0]
            assert argv[:2] == ["cat", ">"] and len(argv) == 3, f"unknown heredoc: {line}"
            body = self.substitute(heredoc)
            path = self.absolute(argv[2])
            self.files[path] = body
            self.real(path).write_text(body)
            self.ran.append(line)
            return
        for argv in self.words(self.substitute(line)):
            self.command(argv, line)
        self.ran.append(line)

    # one simple command
    def command(self, argv: list[str], line: str) -> str:
        prefix = {}
        while argv and re.match(r"^[A-Za-z_]\w*=", argv[0]):
            name, value = argv.pop(0).split("=", 1)
            prefix[name] = value
        name, args = argv[0], argv[1:]
        if name in {"python", "python3"} and args[:1] == ["manage.py"]:
            return self.manage(args[1:], prefix, line)
        if name in {"python", "python3"} and args[:1] == ["-c"]:
            result = subprocess.run(
                [sys.executable, "-c", args[1]], capture_output=True, text=True, check=True
            )
            return result.stdout
        if name in {"python", "python3"} and args[:2] == ["-m", "venv"]:
            assert importlib.util.find_spec("venv"), "the venv module is missing"
            self.venv = self.absolute(args[2])
            return ""
        name = "source" if name == "." else name
        handler = getattr(self, f"cmd_{name.replace('-', '_')}", None)
        assert handler is not None, f"the test does not know how to check `{name}`: {line}"
        return handler(args, line) or ""

    # --- shell built-ins and small tools, done as they are -----------------------------------

    def cmd_cd(self, args, line):
        target = self.absolute(args[0])
        assert target == self.checkout, f"cd {target}: not the checkout ({self.checkout})"
        self.cwd = target
        self.monkeypatch.chdir(self.real(target + "/x").parent)

    def cmd_read(self, args, line):
        assert args[:-1] == ["-rs"], f"read without -rs would echo the secret: {line}"
        self.shell_env[args[-1]] = self.scenario.typed[args[-1]]

    def cmd_export(self, args, line):
        for arg in args:
            name, _, value = arg.partition("=")
            if _:
                self.shell_env[name] = value
            assert name in self.shell_env, f"export of an unset variable: {line}"
            self.monkeypatch.setenv(name, self.shell_env[name])

    def cmd_echo(self, args, line):
        self.ran_output += " ".join(args) + "\n"
        return " ".join(args) + "\n"

    def cmd_set(self, args, line):
        assert args in (["-a"], ["+a"]), line
        self.allexport = args == ["-a"]

    def cmd_chmod(self, args, line):
        mode, path = args
        assert self.absolute(path) in self.files, f"chmod of a file the guide did not write: {line}"
        os.chmod(self.real(path), int(mode, 8))

    def cmd_source(self, args, line):
        path = self.absolute(args[0])
        if path.endswith("/.venv/bin/activate"):
            assert self.venv and path == f"{self.venv}/bin/activate", f"no such venv: {line}"
            return
        assert path in self.files, f"sourcing a file the guide did not write: {line}"
        assert self.allexport, f"`set -a` must come first, or nothing is exported: {line}"
        env = env_file(self.files[path])
        for name, value in env.items():
            self.shell_env[name] = value
            self.monkeypatch.setenv(name, value)
        self.load_settings(env)

    def cmd_pip(self, args, line):
        assert args == ["install", "-e", "."], f"unexpected pip line: {line}"
        assert self.venv and self.cwd == self.checkout, "pip must run in the checkout's venv"
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        names = {re.split(r"[\[<>=; ]", d)[0].lower() for d in project["dependencies"]}
        # what the guide says the install brings
        assert {"gunicorn", "celery", "psycopg", "redis"} <= names

    def cmd_sudo(self, args, line):
        assert args[0] == "systemctl", f"not in NOT_RUN and not systemctl: {line}"
        if args[1:] == ["daemon-reload"]:
            return
        assert args[1:3] == ["enable", "--now"], line
        for unit in args[3:]:
            self.check_unit(unit)

    def cmd_curl(self, args, line):
        url = next(a for a in args if a.startswith("https://"))
        parts = urlsplit(url)
        if parts.hostname == self.scenario.helpdesk_domain:
            self.not_run.append(f"{line}  (asks your helpdesk account's API; no account here)")
            if "-u" in args:  # the connector's basic auth, {email}/token (curl asks the token)
                user = args[args.index("-u") + 1]
                assert re.fullmatch(r"[^/\s:]+@[^/\s:]+/token", user), user
            if "-o" in args:
                target = args[args.index("-o") + 1]
                assert url in self.scenario.downloads, f"no recorded answer for {url}"
                self.real(target).write_text(self.scenario.downloads[url])
            return
        public = urlsplit(self.guide_settings["PUBLIC_BASE_URL"])
        assert parts.hostname == public.hostname, f"curl to an unknown host: {line}"
        from django.test import Client

        response = Client().get(parts.path, HTTP_HOST=parts.hostname, secure=True)
        assert response.status_code == 200, (line, response.status_code, response.content[:300])
        return response.content.decode()

    # --- systemd units, gunicorn and celery ----------------------------------------------------

    def check_unit(self, unit: str) -> None:
        header = f"# /etc/systemd/system/{unit}.service"
        units = [b for b in blocks(self.text) if b.lang == "ini" and b.text.startswith(header)]
        assert len(units) == 1, f"systemctl names {unit}, but the guide shows no {header}"
        keys = dict(line.split("=", 1) for line in units[0].text.splitlines() if "=" in line)
        assert keys["WorkingDirectory"] == self.checkout
        assert keys["EnvironmentFile"] in self.files, "the unit must read the guide's env file"
        exec_start = shlex.split(keys["ExecStart"])
        assert exec_start[0].startswith(f"{self.venv}/bin/"), exec_start[0]
        tool = exec_start[0].rsplit("/", 1)[1]
        {"gunicorn": self.check_gunicorn, "celery": self.check_celery}[tool](exec_start[1:])

    def check_gunicorn(self, args: list[str]) -> None:
        assert importlib.util.find_spec("gunicorn"), "gunicorn is not installed"
        module = importlib.import_module(args[0])
        assert callable(module.application), f"{args[0]} has no WSGI application"

    def check_celery(self, args: list[str]) -> None:
        from celery import Celery

        assert args[0] == "-A"
        app = importlib.import_module(f"{args[1]}.celery").app
        assert isinstance(app, Celery)
        assert args[2] in {"worker", "beat"}
        if "-Q" in args:
            assert args[args.index("-Q") + 1] == django_settings.CELERY_TASK_DEFAULT_QUEUE

    # --- settings, as a production process loads them from the guide's file --------------------

    def load_settings(self, env: dict[str, str]) -> None:
        production_env = {**env, "BILLING_DESK_TESTING": "0"}
        assert "DJANGO_DEBUG" not in env and "BILLING_DESK_DEMO" not in env
        with mock.patch.dict(os.environ, production_env, clear=True):
            loaded = runpy.run_path(str(ROOT / "billing_app" / "settings.py"))
        assert loaded["DEBUG"] is False and loaded["TESTING"] is False
        assert loaded["DATABASES"]["default"]["ENGINE"] == "django.db.backends.postgresql"
        assert loaded["PUBLIC_BASE_URL"].startswith("https://")
        assert loaded["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
        for key in loaded["FIELD_ENCRYPTION_KEYS"]:
            Fernet(key.encode())
        self.guide_settings = loaded
        for name in (
            "PUBLIC_BASE_URL",
            "ALLOWED_HOSTS",
            "CSRF_TRUSTED_ORIGINS",
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEYS",
            "HELPDESK_APP_AUTHOR",
        ):
            setattr(self.settings, name, loaded[name])

    # --- manage.py ------------------------------------------------------------------------------

    def manage(self, args: list[str], prefix: dict[str, str], line: str) -> str:
        assert self.venv, "manage.py before the venv exists"
        name, options = args[0], args[1:]
        # absolute paths of the server live under the temporary root, never the real one
        real_options = [str(self.real(o)) if o.startswith("/") else o for o in options]
        out, err = io.StringIO(), io.StringIO()
        kwargs: dict[str, Any] = {"stdout": out, "stderr": err}
        environ = dict(prefix)
        if name == "createsuperuser":
            # the password prompt, answered the way Django documents for scripts
            kwargs["interactive"] = False
            environ["DJANGO_SUPERUSER_PASSWORD"] = SUPERUSER_PASSWORD
        if name == "collectstatic":
            self.settings.STATIC_ROOT = str(self.real(f"{self.checkout}/staticfiles/x").parent)
        with mock.patch.dict(os.environ, environ):
            if name == "check":
                self.check_deploy(options, kwargs)
            else:
                call_command(name, *real_options, **kwargs)
        assert name in AFTER, f"no check for `manage.py {name}`: say what the step does"
        AFTER[name](self, options, out.getvalue())
        self.outputs.setdefault(name, []).append(out.getvalue())
        return out.getvalue()

    def check_deploy(self, options, kwargs) -> None:
        """``check --deploy`` with the settings the guide's file gives a production process."""
        loaded = self.guide_settings
        assert loaded is not None, "check --deploy before the environment is loaded"
        overrides = {
            name: loaded[name]
            for name in (
                "DEBUG",
                "TESTING",
                "SECRET_KEY",
                "FIELD_ENCRYPTION_KEYS",
                "ALLOWED_HOSTS",
                "REDIS_URL",
                "DEMO_MODE",
                "PUBLIC_BASE_URL",
                "BILLING_DESK_SANDBOX_ENABLED",
                "BILLING_PROVIDERS",
                "SESSION_COOKIE_SECURE",
                "CSRF_COOKIE_SECURE",
                "SECURE_HSTS_SECONDS",
                "SECURE_PROXY_SSL_HEADER",
            )
        }
        # The database the checks look at is the guide's (PostgreSQL); the test's own
        # connection is unaffected (connections were made before this override).
        with (
            pytest.warns(UserWarning, match="DATABASES"),
            override_settings(DATABASES=loaded["DATABASES"], **overrides),
        ):
            call_command("check", *options, **kwargs)


def env_file(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split("=", 1)
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), line
            env[name] = value
    return env


# --- what each manage.py command promises ----------------------------------------------------


def after_generate_encryption_key(run, options, out):
    Fernet(out.strip().encode())  # a valid key


def after_migrate(run, options, out):
    assert Workspace.objects.count() == 0  # the tables exist, nothing in them yet


def after_collectstatic(run, options, out):
    root = Path(run.settings.STATIC_ROOT)
    assert (root / "admin" / "css" / "base.css").is_file()
    assert any(root.joinpath("panel").glob("*.js"))


def after_createsuperuser(run, options, out):
    username = options[options.index("--username") + 1]
    user = User.objects.get(username=username)
    assert user.is_superuser and user.is_staff
    assert user.email == options[options.index("--email") + 1]


def after_check(run, options, out):
    assert options == ["--deploy"]


def after_create_workspace(run, options, out):
    slug = options[options.index("--slug") + 1]
    workspace = Workspace.objects.get(slug=slug)
    assert workspace.name == options[options.index("--name") + 1]
    assert workspace.base_currency == options[options.index("--currency") + 1]
    assert workspace.provider == options[options.index("--provider") + 1] == "stripe"
    assert workspace.stripe_secret_key == run.scenario.typed["STRIPE_SECRET_KEY"]
    assert workspace.stripe_webhook_secret == run.scenario.typed["STRIPE_WEBHOOK_SECRET"]
    with connection.cursor() as cursor:  # stored encrypted
        cursor.execute(
            f"SELECT stripe_secret_key FROM {Workspace._meta.db_table} WHERE id = %s",
            [workspace.pk],
        )
        assert STRIPE_KEY not in cursor.fetchone()[0]
    public = run.settings.PUBLIC_BASE_URL
    assert f"{public}/webhooks/stripe/{slug}/" in out  # the URL the guide registered in Stripe
    assert f"{public}/webhooks/stripe/{slug}/" in run.text


def after_sync_billing(run, options, out):
    calls = [c for c in run.http.calls if c.request.url.startswith("https://api.stripe.com/")]
    assert calls, "sync_billing asked Stripe nothing"
    for call in calls:  # with the key the guide stored
        assert call.request.headers["Authorization"] == f"Bearer {STRIPE_KEY}"


def after_build_helpdesk_apps(run, options, out):
    helpdesk = options[options.index("--only") + 1]
    output_dir = run.absolute(options[options.index("--output-dir") + 1])
    paths = [Path(p) for p in out.split()]
    assert len(paths) == 1 and paths[0].name.startswith(f"billing-desk-{helpdesk}-")
    assert paths[0].parent == run.real(output_dir + "/x").parent
    run.archive = zipfile.ZipFile(paths[0])
    assert run.archive.testzip() is None
    public = run.settings.PUBLIC_BASE_URL
    if helpdesk == "zendesk":
        manifest = json.loads(run.archive.read("manifest.json"))
        url = manifest["location"]["support"]["ticket_sidebar"]["url"]
        assert url == f"{public}/zendesk/sidebar/"
        assert manifest["location"]["support"]["ticket_sidebar"]["signed"] is True
        assert manifest["private"] is True  # self-hosted: a private app
        # the support contact from the environment, not the source's placeholder
        assert run.settings.HELPDESK_APP_AUTHOR, "the guide sets no app author"
        assert manifest["author"]["email"] == run.settings.HELPDESK_APP_AUTHOR["email"]
        assert urlsplit(public).hostname in manifest["domainWhitelist"]
    else:
        text = " ".join(
            run.archive.read(n).decode(errors="replace")
            for n in run.archive.namelist()
            if n.endswith((".json", ".js", ".html"))
        )
        assert urlsplit(public).hostname in text or public in text


def after_add_installation(run, options, out):
    def option(name, default=""):
        return options[options.index(name) + 1] if name in options else default

    installation = Installation.objects.get(
        connector=option("--connector"), domain=option("--domain")
    )
    workspace = Workspace.objects.get(slug=option("--workspace"))
    assert workspace.installation_links.filter(installation=installation).exists()
    assert installation.api_token == run.shell_env["HELPDESK_API_TOKEN"]
    assert installation.api_email == option("--api-email")
    if option("--connector") == "zendesk":
        assert installation.app_id == option("--app-id")
        assert installation.installation_id == option("--installation-id")
        if "--public-key-file" in options:
            assert installation.public_key.startswith("-----BEGIN PUBLIC KEY-----")
        assert f"{run.settings.PUBLIC_BASE_URL}/zendesk/sidebar/" in out
    else:
        assert installation.shared_secret == run.shell_env["HELPDESK_SHARED_SECRET"]
        assert len(installation.shared_secret) >= 32
        assert "short" not in out  # no warning about the secret the guide generated
    assert "No API credentials" not in out
    run.installation = installation


AFTER = {
    "generate_encryption_key": after_generate_encryption_key,
    "migrate": after_migrate,
    "collectstatic": after_collectstatic,
    "createsuperuser": after_createsuperuser,
    "check": after_check,
    "create_workspace": after_create_workspace,
    "sync_billing": after_sync_billing,
    "build_helpdesk_apps": after_build_helpdesk_apps,
    "add_installation": after_add_installation,
}


# --- the outside world ------------------------------------------------------------------------


def stripe_empty_account(http) -> None:
    """An empty Stripe account: every list answers no objects."""

    def empty(request):
        path = urlsplit(request.url).path
        return 200, {}, json.dumps({"object": "list", "data": [], "has_more": False, "url": path})

    http.add_callback(responses.GET, re.compile(r"https://api\.stripe\.com/v1/.*"), callback=empty)


def role_mapping_in_admin(client, text: str, *, helpdesk: str) -> RoleMappingRule:
    """Step "Map … roles": the table's fields posted to the admin form the guide names."""
    from billing_app.admin.forms import RoleMappingRuleForm

    rows = markdown_table_after(text, "| Field | Value |")
    assert "Billing Desk › Role mapping rules › Add role mapping rule" in " ".join(text.split())
    assert RoleMappingRule._meta.app_config.verbose_name == "Billing Desk"
    assert RoleMappingRule._meta.verbose_name_plural == "role mapping rules"
    assert client.login(username="admin", password=SUPERUSER_PASSWORD)
    # Django admin asks staff for a verified second factor too (issue 17)
    verified_login(client, User.objects.get(username="admin"))
    add_url = "/admin/billing_app/rolemappingrule/add/"
    assert client.get(add_url).status_code == 200
    form = RoleMappingRuleForm()
    data = {}
    for name, form_field in form.fields.items():
        label = str(form_field.label)
        assert label in rows, f"the guide's table has no row {label!r}"
        shown = rows[label]
        if hasattr(form_field, "queryset"):
            found = [str(o.pk) for o in form_field.queryset if str(o) == shown]
        elif getattr(form_field, "choices", None):
            found = [str(v) for v, lab in form_field.choices if str(lab) == shown]
        else:
            found = [shown]
        assert found, f"{label}: the admin form offers no {shown!r}"
        data[name] = found[0]
    assert set(rows) == {str(f.label) for f in form.fields.values()}
    response = client.post(add_url, data)
    assert response.status_code == 302, response.content[:2000]
    rule = RoleMappingRule.objects.get()
    assert rule.connector == helpdesk
    return rule


def check_common_errors(text: str) -> None:
    """Every reason code the guide explains is one the connectors answer with."""
    codes = error_codes(text)
    assert len(codes) >= 8
    source = " ".join(
        p.read_text()
        for p in (ROOT / "helpdesk_connectors").rglob("*.py")
        if "tests" not in p.parts
    )
    for code in codes:
        assert f'"{code}"' in source, f"the guide explains {code!r}, which no connector answers"


def check_variables_named(text: str) -> None:
    """Every environment variable or setting the guide names is read by the project."""
    readers = [
        ROOT / "billing_app" / "settings.py",
        ROOT / "helpdesk_connectors" / "framing.py",
        *(ROOT / "billing_app" / "management" / "commands").glob("*.py"),
    ]
    source = " ".join(p.read_text() for p in readers)
    pattern = r"\b((?:DJANGO|BILLING_DESK|STRIPE|HELPDESK|REDIS|DATABASE|FRESHWORKS)_[A-Z_]+)\b"
    for name in set(re.findall(pattern, text)):
        if name == "DATABASE_URL":  # read by dj_database_url.config() in settings.py
            assert "dj_database_url.config(" in source
            continue
        assert f'"{name}"' in source, f"the guide names {name}, which nothing reads"


def run_guide(scenario, sequence, *, text, client, tmp_path, monkeypatch, settings, http):
    """Every command of ``sequence``, in order, then the role mapping step in Django admin.

    Returns the run and the rule; ``client`` then talks to the public address over https.
    """
    run = GuideRun(
        scenario,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        settings=settings,
        http=http,
        text=text,
    )
    for block in sequences(text)[sequence]:
        for line, heredoc in logical_lines(block):
            run.run_line(line, heredoc)
    assert set(run.outputs) >= {
        "migrate",
        "collectstatic",
        "createsuperuser",
        "check",
        "create_workspace",
        "sync_billing",
        "build_helpdesk_apps",
        "add_installation",
    }
    assert {n.split("  (")[0].split()[0] for n in run.not_run} <= {"sudo", "git", "curl"}

    # from here on, requests arrive at the public address, over https
    client.defaults.update(
        {
            "HTTP_HOST": urlsplit(settings.PUBLIC_BASE_URL).hostname,
            "wsgi.url_scheme": "https",
            "SERVER_PORT": "443",
        }
    )
    rule = role_mapping_in_admin(client, text, helpdesk=scenario.name)
    client.logout()
    return run, rule


# --- Zendesk --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zendesk_app_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# The forms the key file may have (``--public-key-file``): the PEM, or the Apps API's answer
# saved as it came, a JSON-quoted string or an object (zendesk_app_manifest/README.md).
KEY_FILE_FORMS = {
    "pem": lambda pem: pem,
    "json string": json.dumps,
    "json object": lambda pem: json.dumps({"public_key": pem}),
}


def zendesk_scenario(public_pem: str, key_file: str) -> Scenario:
    domain = "acme.zendesk.com"
    return Scenario(
        name="zendesk",
        placeholders={
            "Billing Desk repository URL": "https://git.example.com/billing-desk.git",
            "database password": "db-password-from-the-guide",
            "app id": ZENDESK_APP_ID,
            "installation id": ZENDESK_INSTALLATION_ID,
            "your Zendesk email": "admin@acme.example",
        },
        typed={
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            "HELPDESK_API_TOKEN": "zdGuideApiToken",
        },
        helpdesk_domain=domain,
        downloads={
            f"https://{domain}/api/v2/apps/{ZENDESK_APP_ID}/public_key.pem": key_file,
        },
    )


ZENDESK_TEXT = guide_text("zendesk")


@pytest.mark.parametrize(
    ("sequence", "key_form"),
    [
        (sequence, form)
        for sequence in sequences(ZENDESK_TEXT)
        for form in (["pem"] if sequence == "main" else list(KEY_FILE_FORMS))
    ],
)
def test_zendesk_guide_from_a_fresh_server_to_the_panel(
    sequence, key_form, db, client, http, tmp_path, monkeypatch, settings, zendesk_app_key
):
    text = ZENDESK_TEXT
    public_pem = _public_pem(zendesk_app_key)
    scenario = zendesk_scenario(public_pem, KEY_FILE_FORMS[key_form](public_pem))
    stripe_empty_account(http)
    base = f"https://{scenario.helpdesk_domain}"
    alternative = sequence != "main"
    if not alternative:  # the key is fetched from Zendesk at the first sign-in
        http.get(
            f"{base}/api/v2/apps/{ZENDESK_APP_ID}/public_key.pem",
            body=public_pem,
            content_type="application/x-pem-file",
        )
    run, rule = run_guide(
        scenario,
        sequence,
        text=text,
        client=client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        settings=settings,
        http=http,
    )

    # an agent of the group "Billing" opens a ticket: Zendesk posts a signed token to the
    # sidebar URL of the uploaded archive
    user_id = 35436
    http.get(f"{base}/api/v2/users/{user_id}.json", json=zendesk_user(user_id))
    http.get(
        f"{base}/api/v2/users/{user_id}/group_memberships.json",
        json=zendesk_memberships(user_id, [(360000111, "Support"), (360000222, rule.value)]),
    )
    manifest = json.loads(run.archive.read("manifest.json"))
    sidebar = urlsplit(manifest["location"]["support"]["ticket_sidebar"]["url"])
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": scenario.helpdesk_domain,
            "aud": f"{base}/api/v2/apps/installations/{ZENDESK_INSTALLATION_ID}.json",
            "sub": f"{base}/api/v2/users/{user_id}.json",
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "context": {"product": "support", "location": "ticket_sidebar"},
        },
        zendesk_app_key,
        algorithm="RS256",
    )
    assert sidebar.hostname == client.defaults["HTTP_HOST"]
    response = client.post(
        f"{sidebar.path}?origin={base}&app_guid=guide-1",
        {"token": token, "ticket_id": "4711"},
    )

    assert response.status_code == 200, response.content[:2000]
    assert response.context["app_token"]
    assert response["Content-Security-Policy"].endswith(f"frame-ancestors {base}")
    membership = AgentMembership.objects.get(installation=run.installation)
    assert membership.role == rule.role == "specialist"
    fetches = [c for c in http.calls if c.request.url.endswith("public_key.pem")]
    assert len(fetches) == (0 if alternative else 1)
    me = client.get(
        "/api/v1/me/",
        HTTP_AUTHORIZATION=f"Bearer {response.context['app_token']}",
    )
    assert me.status_code == 200


def test_zendesk_guide_errors_and_variables_are_the_codes_ones():
    check_common_errors(ZENDESK_TEXT)
    check_variables_named(ZENDESK_TEXT)


# --- Freshdesk ------------------------------------------------------------------------------------

FRESHDESK_TEXT = guide_text("freshdesk")
FRESHDESK_API_KEY = "fdGuideApiKey"


def freshdesk_scenario() -> Scenario:
    return Scenario(
        name="freshdesk",
        placeholders={
            "Billing Desk repository URL": "https://git.example.com/billing-desk.git",
            "database password": "db-password-from-the-guide",
        },
        typed={
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            "HELPDESK_API_TOKEN": FRESHDESK_API_KEY,
        },
        helpdesk_domain="acme.freshdesk.com",
    )


def iparam_filled(template: str, values: dict[str, str]) -> str:
    """A request template's ``<%= iparam.NAME %>``, as Freshworks' proxy fills it in."""

    def fill(match: re.Match) -> str:
        assert match.group(1) in values, f"no value for iparam {match.group(1)!r}"
        return values[match.group(1)]

    return re.sub(r"<%=\s*iparam\.(\w+)\s*%>", fill, template)


@pytest.mark.parametrize("sequence", list(sequences(FRESHDESK_TEXT)))
def test_freshdesk_guide_from_a_fresh_server_to_the_panel(
    sequence, db, client, http, tmp_path, monkeypatch, settings
):
    from helpdesk_connectors import framing

    text = FRESHDESK_TEXT
    scenario = freshdesk_scenario()
    stripe_empty_account(http)
    run, rule = run_guide(
        scenario,
        sequence,
        text=text,
        client=client,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        settings=settings,
        http=http,
    )
    secret = run.shell_env["HELPDESK_SHARED_SECRET"]
    assert secret in run.ran_output  # echoed for the admin to paste in step 8

    # the install page in Freshdesk asks for the iparams of the built archive: the guide names
    # each, and the admin types the secret it printed
    iparams = json.loads(run.archive.read("config/iparams.json"))
    assert set(iparams) == {"shared_secret"}
    assert f"**{iparams['shared_secret']['display_name']}**" in text
    assert iparams["shared_secret"]["secure"] is True
    typed_iparams = {"shared_secret": secret}

    # the agent (custom role "Billing Team") as Freshdesk's API describes them
    base = f"https://{scenario.helpdesk_domain}"
    agent_id = 43000123
    http.get(
        f"{base}/api/v2/agents/{agent_id}",
        json=freshdesk_agent(agent_id, role_ids=[43000002, 43000077], group_ids=[43000500]),
    )
    http.get(f"{base}/api/v2/roles", json=FRESHDESK_ROLES)
    http.get(f"{base}/api/v2/groups", json=[freshdesk_group(43000500, "Support")])

    # the app frame opens a ticket: the createSession template of the built archive, filled in
    # by the proxy, with the body app.js sends
    template = json.loads(run.archive.read("config/requests.json"))["createSession"]["schema"]
    app_js = run.archive.read("app/scripts/app.js").decode()
    public = urlsplit(settings.PUBLIC_BASE_URL)
    assert template["protocol"] == "https" and template["host"] == public.hostname
    assert template["method"] == "POST"
    sent = re.search(
        r'invokeTemplate\("createSession", \{\s*body: JSON\.stringify\(\{(.*?)\}\)', app_js, re.S
    )
    body_keys = re.findall(r"(\w+): ctx\.\w+", sent.group(1))
    assert body_keys == ["agent_id", "domain", "ticket_id", "requester_email"]
    body = {
        "agent_id": agent_id,
        "domain": scenario.helpdesk_domain,
        "ticket_id": 812,
        "requester_email": "ap@acme.example",
    }
    headers = {k: iparam_filled(v, typed_iparams) for k, v in template["headers"].items()}
    content_type = headers.pop("Content-Type")

    # the first time on this browser the session is refused until the agent enrolls it (issue
    # 17): the archive's startEnrollment template mails a code to the agent's Freshdesk address,
    # verifyEnrollment turns the code into the device credential sent with every session call
    refused = client.post(
        template["path"], data=json.dumps(body), content_type=content_type, headers=headers
    )
    assert refused.json()["error"]["code"] == "device_enrollment_required"
    assert "device_enrollment_required" in text
    templates = json.loads(run.archive.read("config/requests.json"))

    def through(name: str, sent: dict) -> dict:
        schema = templates[name]["schema"]
        assert schema["host"] == public.hostname and schema["method"] == "POST"
        filled = {k: iparam_filled(v, typed_iparams) for k, v in schema["headers"].items()}
        answer = client.post(
            schema["path"],
            data=json.dumps(sent),
            content_type=filled.pop("Content-Type"),
            headers=filled,
        )
        assert answer.status_code == 200, answer.content[:2000]
        return answer.json()

    started = through("startEnrollment", {"agent_id": agent_id, "domain": body["domain"]})
    assert mail.outbox[-1].to == ["maria@acme.example"]
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    verified = through(
        "verifyEnrollment",
        {
            **{"agent_id": agent_id, "domain": body["domain"]},
            "enrollment": started["enrollment"],
            "code": code,
        },
    )
    body["device_credential"] = verified["device_credential"]
    session = client.post(
        template["path"], data=json.dumps(body), content_type=content_type, headers=headers
    )
    assert session.status_code == 200, session.content[:2000]
    token = session.json()["token"]

    # then posts the token to the panel page of the URL the archive names
    assert f'var BILLING_DESK_URL = "{settings.PUBLIC_BASE_URL}";' in app_js
    panel_path = re.search(r'var PANEL_PATH = "([^"]+)";', app_js).group(1)
    panel = client.post(panel_path, {"token": token, "ticket_id": "812"})

    assert panel.status_code == 200, panel.content[:2000]
    assert panel.context["app_token"] == token
    frame_ancestors = panel["Content-Security-Policy"].split("frame-ancestors ")[1].split()
    assert base in frame_ancestors
    assert set(framing.freshworks_app_frame_origins()) <= set(frame_ancestors)
    membership = AgentMembership.objects.get(installation=run.installation)
    assert membership.role == rule.role == "specialist"
    agent_reads = [c for c in http.calls if "/api/v2/agents/" in c.request.url]
    assert agent_reads and all(  # with the API key the guide registered (basic auth KEY:X)
        c.request.headers["Authorization"].startswith("Basic ") for c in agent_reads
    )

    # what the guide says about the proxy limit and the session's reuse is what app.js does
    assert "50 requests per" in text and "50 requests per minute per app per account" in app_js
    assert "var RENEW_MARGIN_MS = 2 * 60 * 1000;" in app_js and "two minutes before" in text
    assert settings.APP_SESSION_TTL_SECONDS == 15 * 60 and "15 minutes" in text
    assert "localStorage" in app_js


def test_freshdesk_guide_errors_and_variables_are_the_codes_ones():
    check_common_errors(FRESHDESK_TEXT)
    check_variables_named(FRESHDESK_TEXT)
    assert (
        "FRESHWORKS_APP_FRAME_ORIGINS" in (ROOT / "helpdesk_connectors" / "framing.py").read_text()
    )
