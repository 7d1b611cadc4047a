"""``manage.py build_helpdesk_apps``: archives for this deployment, or a clear refusal and no file."""

from __future__ import annotations

import json
import tomllib
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError

from billing_app.management.commands import build_helpdesk_apps
from helpdesk_connectors.packaging import PackageError, public_url_check

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
ZENDESK_ZIP = f"billing-desk-zendesk-{VERSION}.zip"
FRESHDESK_ZIP = f"billing-desk-freshdesk-{VERSION}.zip"


def build(**options) -> list[str]:
    out = StringIO()
    call_command("build_helpdesk_apps", stdout=out, stderr=StringIO(), **options)
    return out.getvalue().splitlines()


def zendesk_manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


def test_builds_the_zendesk_archive_for_the_deployment_and_prints_its_path(tmp_path):
    out_dir = tmp_path / "dist"

    printed = build(
        public_url="https://billing.acme.example", output_dir=str(out_dir), only="zendesk"
    )

    assert printed == [str(out_dir / ZENDESK_ZIP)]
    assert sorted(p.name for p in out_dir.iterdir()) == [ZENDESK_ZIP]
    manifest = zendesk_manifest(out_dir / ZENDESK_ZIP)
    sidebar = manifest["location"]["support"]["ticket_sidebar"]
    assert sidebar["url"] == "https://billing.acme.example/zendesk/sidebar/"
    assert sidebar["signed"] is True
    assert manifest["domainWhitelist"] == ["billing.acme.example"]
    assert manifest["private"] is True  # self-hosted: a private app
    assert manifest["version"] == VERSION
    assert "parameters" not in manifest


def test_builds_both_archives_and_prints_each_path(tmp_path):
    printed = build(public_url="https://billing.acme.example", output_dir=str(tmp_path))

    assert printed == [str(tmp_path / ZENDESK_ZIP), str(tmp_path / FRESHDESK_ZIP)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ZENDESK_ZIP, FRESHDESK_ZIP])
    for name in (ZENDESK_ZIP, FRESHDESK_ZIP):
        with zipfile.ZipFile(tmp_path / name) as archive:
            assert archive.testzip() is None
            contents = {info.filename: archive.read(info) for info in archive.infolist()}
        if name == ZENDESK_ZIP:  # the author (kept from the source without a setting) aside
            manifest = json.loads(contents["manifest.json"])
            manifest.pop("author")
            contents["manifest.json"] = json.dumps(manifest).encode()
        blob = b"".join(contents.values())
        # the deployment's host is in each package, the source's example host in neither
        assert b"billing.acme.example" in blob
        assert b"billing-desk.example.com" not in blob


def test_only_freshdesk_builds_the_freshdesk_archive(tmp_path):
    printed = build(
        public_url="https://billing.acme.example", output_dir=str(tmp_path), only="freshdesk"
    )
    assert printed == [str(tmp_path / FRESHDESK_ZIP)]
    assert [p.name for p in tmp_path.iterdir()] == [FRESHDESK_ZIP]


def test_a_url_one_helpdesk_refuses_writes_neither_archive(tmp_path):
    # an IP address is a valid https URL for Zendesk, but Freshworks templates need a domain
    out_dir = tmp_path / "dist"
    with pytest.raises(CommandError) as error:
        build(public_url="https://203.0.113.7", output_dir=str(out_dir))
    assert "Freshdesk package:" in str(error.value)
    assert "Nothing was written." in str(error.value)
    assert not out_dir.exists()


def test_the_url_defaults_to_the_public_base_url_setting(tmp_path, settings):
    settings.PUBLIC_BASE_URL = "https://desk.globex.example:8443"

    build(output_dir=str(tmp_path), only="zendesk")

    manifest = zendesk_manifest(tmp_path / ZENDESK_ZIP)
    assert (
        manifest["location"]["support"]["ticket_sidebar"]["url"]
        == "https://desk.globex.example:8443/zendesk/sidebar/"
    )
    assert manifest["domainWhitelist"] == ["desk.globex.example"]


def test_public_builds_a_marketplace_app(tmp_path):
    build(
        public_url="https://billing.acme.example",
        output_dir=str(tmp_path),
        only="zendesk",
        public=True,
    )
    assert zendesk_manifest(tmp_path / ZENDESK_ZIP)["private"] is False


def test_the_same_input_gives_the_same_bytes(tmp_path):
    # given two builds at different moments into different folders
    first = build(
        public_url="https://billing.acme.example", output_dir=str(tmp_path / "a"), only="zendesk"
    )
    second = build(
        public_url="https://billing.acme.example/", output_dir=str(tmp_path / "b"), only="zendesk"
    )

    # then the archives are byte for byte the same: sorted entries, fixed timestamps
    assert Path(first[0]).read_bytes() == Path(second[0]).read_bytes()
    with zipfile.ZipFile(first[0]) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_a_rebuild_replaces_the_older_archive(tmp_path):
    build(public_url="https://old.acme.example", output_dir=str(tmp_path), only="zendesk")
    build(public_url="https://new.acme.example", output_dir=str(tmp_path), only="zendesk")

    assert sorted(p.name for p in tmp_path.iterdir()) == [ZENDESK_ZIP]  # no temporary files left
    assert zendesk_manifest(tmp_path / ZENDESK_ZIP)["domainWhitelist"] == ["new.acme.example"]


def test_the_author_comes_from_settings_when_there_is_one(tmp_path, settings):
    settings.HELPDESK_APP_AUTHOR = {
        "name": "Acme IT",
        "email": "it@acme.example",
        "url": "https://it.acme.example",
    }
    build(public_url="https://billing.acme.example", output_dir=str(tmp_path), only="zendesk")
    assert zendesk_manifest(tmp_path / ZENDESK_ZIP)["author"] == settings.HELPDESK_APP_AUTHOR


def test_without_an_author_setting_the_source_author_is_kept_and_named(tmp_path, settings):
    settings.HELPDESK_APP_AUTHOR = None
    source = json.loads((ROOT / "zendesk_app_manifest" / "manifest.json").read_text())
    err = StringIO()
    call_command(
        "build_helpdesk_apps",
        public_url="https://billing.acme.example",
        output_dir=str(tmp_path),
        only="zendesk",
        stdout=StringIO(),
        stderr=err,
    )
    assert zendesk_manifest(tmp_path / ZENDESK_ZIP)["author"] == source["author"]
    assert "BILLING_DESK_APP_AUTHOR_EMAIL" in err.getvalue()


BAD_URLS = {
    "http": ("http://billing.acme.example", "not an https URL"),
    "http on localhost": ("http://localhost:8000", "not an https URL"),
    "http on 127.0.0.1": ("http://127.0.0.1:8000", "not an https URL"),
    "no scheme": ("billing.acme.example", "not an https URL"),
    "a path": ("https://billing.acme.example/desk", "has a path"),
    "the sidebar path": ("https://billing.acme.example/zendesk/sidebar/", "has a path"),
    "a query": ("https://billing.acme.example/?x=1", "has a path, query"),
    "an empty query": ("https://billing.acme.example?", "has a path, query"),
    "a fragment": ("https://billing.acme.example#top", "has a path, query or fragment"),
    "a user name": ("https://admin:pw@billing.acme.example", "user name or password"),
    "no host": ("https://", "has no host name"),
    "a bad host": ("https://billing_desk.example", "not a valid host name"),
    "a bad port": ("https://billing.acme.example:99999", "not a URL"),
    "port zero": ("https://billing.acme.example:0", "port 0"),
    "empty": ("", "No public URL"),
    "blank": ("   ", "No public URL"),
}


@pytest.mark.parametrize("case", BAD_URLS)
def test_bad_urls_are_refused_and_nothing_is_written(case, tmp_path):
    url, message = BAD_URLS[case]
    out_dir = tmp_path / "dist"

    with pytest.raises(CommandError) as error:
        build(public_url=url, output_dir=str(out_dir))

    assert message in str(error.value)
    assert "Nothing was written." in str(error.value)
    assert not out_dir.exists()


def test_an_unset_public_url_is_refused(tmp_path, settings):
    settings.PUBLIC_BASE_URL = ""
    with pytest.raises(CommandError, match="BILLING_DESK_PUBLIC_URL"):
        build(output_dir=str(tmp_path / "dist"))
    assert not (tmp_path / "dist").exists()


def test_the_development_default_is_refused(tmp_path, settings):
    # the settings' default for a developer machine is not an address a helpdesk can use
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    with pytest.raises(CommandError, match="not an https URL"):
        build(output_dir=str(tmp_path / "dist"))
    assert not (tmp_path / "dist").exists()


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "dist"
    blocker.write_text("not a folder")
    with pytest.raises(CommandError, match="is not a folder"):
        build(public_url="https://billing.acme.example", output_dir=str(blocker))
    assert blocker.read_text() == "not a folder"


def test_an_unknown_helpdesk_is_refused(tmp_path):
    with pytest.raises(CommandError, match="Unknown helpdesk 'kayako'"):
        build(
            public_url="https://billing.acme.example", output_dir=str(tmp_path / "d"), only="kayako"
        )
    assert not (tmp_path / "d").exists()


def test_a_failing_package_leaves_the_output_folder_as_it_was(tmp_path, monkeypatch):
    # given the Freshdesk builder refuses its input after the Zendesk archive was built
    def refuse(**kwargs):
        raise PackageError("the source folder is broken.")

    monkeypatch.setattr(build_helpdesk_apps, "build_freshdesk_package", refuse)
    out_dir = tmp_path / "dist"

    with pytest.raises(CommandError) as error:
        build(public_url="https://billing.acme.example", output_dir=str(out_dir))

    # then the error names the package, and not even the Zendesk archive was written
    assert "Freshdesk package: the source folder is broken." in str(error.value)
    assert not out_dir.exists()


def test_public_url_check_normalises_the_address():
    assert public_url_check("https://Billing.Acme.Example/").base == "https://billing.acme.example"
    assert (
        public_url_check("https://billing.acme.example:443").base == "https://billing.acme.example"
    )
    checked = public_url_check(" https://billing.acme.example:8443 ")
    assert (checked.base, checked.host) == (
        "https://billing.acme.example:8443",
        "billing.acme.example",
    )
    assert public_url_check("https://[2001:db8::1]:8443").base == "https://[2001:db8::1]:8443"


def test_help_names_the_options_and_the_rules():
    parser = load_command_class("billing_app", "build_helpdesk_apps").create_parser(
        "manage.py", "build_helpdesk_apps"
    )
    text = " ".join(parser.format_help().split())
    for mention in [
        "--public-url",
        "--output-dir",
        "--only",
        "--public",
        "BILLING_DESK_PUBLIC_URL",
        "http is refused",
        "nothing is written",
    ]:
        assert mention in text, mention


@pytest.mark.parametrize(
    ("name", "shipped"),
    [
        ("app/scripts/app.js", True),
        ("app/styles/images/icon.svg", True),
        ("translations/pt-br.json", True),
        ("assets/logo-small.png", True),
        ("app/index.html", True),
        ("app/styles/style.css", True),
        ("app/scripts/app.js~", False),
        ("app/scripts/.app.js.swp", False),
        ("app/scripts/app.js.swp", False),
        ("app/scripts/#app.js#", False),
        ("app/scripts/.#app.js", False),
        ("app/scripts/app.js.orig", False),
        ("app/scripts/app.js.rej", False),
        ("app/scripts/app.orig.js", False),
        ("assets/logo.bak.png", False),
        ("assets/logo copy.png", False),
        ("assets/.DS_Store", False),
        (".git/config.json", False),
        ("app/.cache/app.js", False),
        (".env", False),
        ("config/secrets.env", False),
        ("README.md", False),
        ("app/notes.txt", False),
        ("app/scripts/app", False),
        ("app//app.js", False),
    ],
)
def test_only_plain_files_of_the_package_types_are_shipped(name, shipped):
    from helpdesk_connectors.packaging import shipped_file

    assert shipped_file(name) is shipped
