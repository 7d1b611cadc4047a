"""The built Freshdesk archive, checked against the FDK platform 3.0 rules as Freshworks documents them.

Sources (named in freshdesk_app/README.md):
* iparams — FDK validation error catalog for installation parameters (allowed ``type``
  values; ``required``/``secure`` booleans; ``options`` only for dropdown/radio/multiselect;
  credentials marked secure), freshworks-developers/freshworks-platform3.
* request templates — "Use request method to place secure HTTP calls" (v3.0): method,
  https, host a fully qualified domain name without protocol or trailing slash, path with a
  leading slash, supported Content-Type values, ``maxAttempts`` 1–5, ``retryDelay`` a
  multiple of 100 up to 1500, at most 100 templates; iparams in ``host``/``path``/``query``
  only when non-secure, secure iparams in the Authorization header.
* icon — SVG, 64×64 pixels or larger (Freshworks marketplace requirements; Freshworks'
  placeholder docs ask 64 × 64 for the location icon).
* manifest — platform-version 3.0, ``modules.common.requests`` declares every template,
  ``support_ticket.location.ticket_sidebar`` with ``url`` and ``icon`` in ``app/``.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from helpdesk_connectors.packaging import freshdesk as package

PUBLIC_URL = "https://billing.acme-corp.com"
HOST = "billing.acme-corp.com"
FDK_IPARAM_TYPES = {
    "text",
    "paragraph",
    "dropdown",
    "email",
    "number",
    "phone_number",
    "date",
    "url",
    "radio",
    "checkbox",
    "multiselect",
}
OPTION_TYPES = {"dropdown", "radio", "multiselect"}
METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}
CONTENT_TYPES = {
    "application/json",
    "application/xml",
    "text/html",
    "text/xml",
    "application/jsonp",
    "text/plain",
    "text/javascript",
    "application/vnd.api+json",
}
SUBSTITUTION = re.compile(r"<%=\s*(?:encode\()?\s*(iparam|context)\.(\w+)\s*\)?\s*%>")
FQDN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
CREDENTIAL_NAME = re.compile(r"secret|password|token|api_?key", re.IGNORECASE)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return package.build_freshdesk_package(
        public_url=PUBLIC_URL, output_dir=tmp_path_factory.mktemp("dist"), version="1.4.0"
    )


@pytest.fixture(scope="module")
def archive(built) -> dict[str, bytes]:
    with zipfile.ZipFile(built) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def _json(archive, name):
    return json.loads(archive[name].decode("utf-8"))


def _svg_size(svg: str) -> tuple[float, float]:
    head = svg[: svg.index(">")]
    width = re.search(r'\swidth="([\d.]+)(?:px)?"', head)
    height = re.search(r'\sheight="([\d.]+)(?:px)?"', head)
    assert width and height, "the icon must state its width and height"
    return float(width.group(1)), float(height.group(1))


# --- the archive -------------------------------------------------------------------------------


def test_archive_name_and_layout_are_fdk_packs(built, archive):
    assert built.name == "billing-desk-freshdesk-1.4.0.zip"
    # what `fdk pack` zips: the manifest and the app and config folders, at the root
    assert {name.split("/")[0] for name in archive} == {"manifest.json", "app", "config"}
    assert {"app/index.html", "config/iparams.json", "config/requests.json"} <= set(archive)
    assert not any(part.startswith(".") for name in archive for part in name.split("/"))


def test_the_build_is_deterministic(built, tmp_path):
    again = package.build_freshdesk_package(
        public_url=PUBLIC_URL + "/", output_dir=tmp_path, version="1.4.0"
    )
    assert (
        hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(built.read_bytes()).digest()
    )
    with zipfile.ZipFile(again) as zf:
        assert [i.filename for i in zf.infolist()] == sorted(i.filename for i in zf.infolist())
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_no_template_or_example_host_is_left(archive):
    for name, data in archive.items():
        text = data.decode("utf-8")
        assert package.TEMPLATE_HOST not in text, name
        assert "example.com" not in text, name


# --- manifest ----------------------------------------------------------------------------------


def test_manifest_follows_platform_3(archive):
    manifest = _json(archive, "manifest.json")
    assert manifest["platform-version"] == "3.0"
    assert set(manifest["engines"]) == {"node", "fdk"}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in manifest["engines"].values())
    # platform 3.0 has no whitelisted-domains: request templates are the allow list
    assert "whitelisted-domains" not in manifest
    sidebar = manifest["modules"]["support_ticket"]["location"]["ticket_sidebar"]
    assert set(sidebar) == {"url", "icon"}
    assert f"app/{sidebar['url']}" in archive
    assert f"app/{sidebar['icon']}" in archive
    # every template the app invokes is declared, and every declared one exists
    templates = _json(archive, "config/requests.json")
    assert set(manifest["modules"]["common"]["requests"]) == set(templates)
    js = archive["app/scripts/app.js"].decode()
    assert set(re.findall(r'invokeTemplate\("([\w-]+)"', js)) == set(templates)


def test_index_loads_the_app_client_then_the_app(archive):
    html = archive["app/index.html"].decode()
    assert html.index('src="{{{appclient}}}"') < html.index('src="scripts/app.js"')
    assert 'href="styles/style.css"' in html and "app/styles/style.css" in archive


def test_icon_is_an_svg_of_at_least_64_pixels(archive):
    manifest = _json(archive, "manifest.json")
    icon = manifest["modules"]["support_ticket"]["location"]["ticket_sidebar"]["icon"]
    assert icon.endswith(".svg")
    svg = archive[f"app/{icon}"].decode()
    assert svg.lstrip().startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg
    width, height = _svg_size(svg)
    assert width == height >= 64
    assert re.search(r'viewBox="0 0 ([\d.]+) \1"', svg), "square viewBox"


# --- iparams -----------------------------------------------------------------------------------


def test_iparams_pass_the_fdk_validation_rules(archive):
    iparams = _json(archive, "config/iparams.json")
    assert iparams, "iparams.json is mandatory"
    for key, spec in iparams.items():
        assert isinstance(key, str) and key.strip(), key
        assert spec.get("display_name") and spec.get("type"), key
        assert spec["type"] in FDK_IPARAM_TYPES, (key, spec["type"])
        assert ("options" in spec) == (spec["type"] in OPTION_TYPES), key
        for flag in ("required", "secure"):
            assert spec.get(flag, False) in (True, False), (key, flag)
        if CREDENTIAL_NAME.search(key):
            assert spec.get("secure") is True, f"{key} looks like a credential but is not secure"


def test_the_admin_types_only_the_shared_secret(archive):
    iparams = _json(archive, "config/iparams.json")
    assert set(iparams) == {"shared_secret"}
    assert iparams["shared_secret"] == {
        **iparams["shared_secret"],
        "type": "text",
        "required": True,
        "secure": True,
    }


# --- request templates -------------------------------------------------------------------------


def test_request_templates_follow_the_documented_schema(archive):
    templates = _json(archive, "config/requests.json")
    iparams = _json(archive, "config/iparams.json")
    assert 0 < len(templates) <= 100
    for name, template in templates.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]+", name)
        schema, options = template["schema"], template.get("options", {})
        assert schema["method"] in METHODS
        assert schema.get("protocol", "https") == "https"
        assert FQDN.match(schema["host"]), schema["host"]
        assert schema["path"].startswith("/")
        content_type = schema.get("headers", {}).get("Content-Type")
        assert content_type is None or content_type in CONTENT_TYPES
        assert 1 <= options.get("maxAttempts", 1) <= 5
        delay = options.get("retryDelay", 0)
        assert delay % 100 == 0 and 0 <= delay <= 1500
        # secure iparams: only in headers; host, path and query take non-secure values only
        for where in ("host", "path", "query"):
            for kind, key in SUBSTITUTION.findall(json.dumps(schema.get(where, ""))):
                assert kind != "iparam" or not iparams.get(key, {}).get("secure"), (where, key)
        for header, value in schema.get("headers", {}).items():
            for kind, key in SUBSTITUTION.findall(value):
                if kind == "iparam" and iparams[key].get("secure"):
                    assert header == "Authorization", header


def test_session_template_reaches_this_deployment_with_the_secret_in_authorization(archive):
    from helpdesk_connectors.freshdesk.connector import SECRET_SCHEME

    schema = _json(archive, "config/requests.json")["createSession"]["schema"]
    assert schema["method"] == "POST"
    assert schema["host"] == HOST
    assert schema["path"] == reverse("freshdesk-session")
    assert schema["headers"] == {
        "Authorization": f"{SECRET_SCHEME} <%= iparam.shared_secret %>",
        "Content-Type": "application/json",
    }


def test_app_frame_loads_the_panel_from_this_deployment(archive):
    js = archive["app/scripts/app.js"].decode()
    assert f'var BILLING_DESK_URL = "{PUBLIC_URL}";' in js
    assert f'var PANEL_PATH = "{reverse("freshdesk-panel")}";' in js
    assert 'client.events.on("app.activated"' in js
    for field in ["agent_id", "domain", "ticket_id", "requester_email"]:
        assert f"{field}:" in js
    for key in ['"loggedInUser"', '"ticket"', '"requester"', '"domainName"']:
        assert f"client.data.get({key})" in js
    # secure iparams never reach the frame, and the frame never asks for them
    assert "shared_secret" not in js and "iparams.get" not in js


def test_a_path_prefix_reaches_template_and_frame(tmp_path):
    built = package.build_freshdesk_package(
        public_url="https://tools.acme-corp.com/billing/", output_dir=tmp_path, version="2.0.0"
    )
    with zipfile.ZipFile(built) as zf:
        schema = json.loads(zf.read("config/requests.json"))["createSession"]["schema"]
        js = zf.read("app/scripts/app.js").decode()
    assert schema["host"] == "tools.acme-corp.com"
    assert schema["path"] == "/billing" + reverse("freshdesk-session")
    assert 'var BILLING_DESK_URL = "https://tools.acme-corp.com/billing";' in js


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://billing.acme-corp.com",
        "https://203.0.113.7",
        "https://[2001:db8::1]",
        "https://billing.acme-corp.com:8443",
        "https://localhost",
        "https://billing",
        "https://billing.acme-corp.com/?next=/",
        "https://billing.acme-corp.com/#top",
        "https://user:pw@billing.acme-corp.com",
        "https://billing-desk.invalid",
        "https://bad_host.acme-corp.com",
        "https://billing.acme-corp.com/a b",
        "",
    ],
)
def test_urls_a_request_template_cannot_name_are_refused(url, tmp_path):
    with pytest.raises(package.PackageError):
        package.build_freshdesk_package(public_url=url, output_dir=tmp_path, version="1.0.0")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("version", ["", "../1.0", "1.0/evil", "1 0", "-rc"])
def test_bad_versions_are_refused(version, tmp_path):
    with pytest.raises(package.PackageError):
        package.build_freshdesk_package(public_url=PUBLIC_URL, output_dir=tmp_path, version=version)


def test_package_errors_are_value_errors():
    assert issubclass(package.PackageError, ValueError)


# --- the source folder -------------------------------------------------------------------------


def test_source_names_only_the_template_host():
    source = package.SOURCE
    requests = json.loads((source / "config" / "requests.json").read_text())
    assert requests["createSession"]["schema"]["host"] == package.TEMPLATE_HOST
    js = (source / "app" / "scripts" / "app.js").read_text()
    assert js.count(f'var BILLING_DESK_URL = "{package.TEMPLATE_URL}";') == 1
    assert (source / "README.md").is_file()


# --- only the package's files; nothing left behind -------------------------------------------

STRAY = [
    "app/scripts/app.js.orig",
    "app/scripts/app.js~",
    "app/scripts/.app.js.swp",
    "app/scripts/#app.js#",
    "app/scripts/app.bak.js",
    "app/scripts/debug.js",
    "app/styles/.DS_Store",
    "config/requests.json~",
    "config/requests.json.rej",
    "config/iparams.test.json",
    "config/test_data/iparams.json",
    ".fdk/localstore",
    ".env",
    "app/notes.txt",
    "secrets.json",
]


def _copy_source(tmp_path: Path) -> Path:
    import shutil

    source = tmp_path / "freshdesk_app"
    shutil.copytree(package.SOURCE, source)
    return source


def test_stray_files_in_the_source_are_not_in_the_archive(tmp_path):
    # given a working tree with backups, swap files, hidden folders and local test data
    source = _copy_source(tmp_path)
    for name in STRAY:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text('{"api_key": "local-only"}')

    # when the archive is built from it
    built = package.build_freshdesk_package(
        public_url=PUBLIC_URL, output_dir=tmp_path / "dist", version="1.4.0", source_dir=source
    )

    # then it holds exactly the package's files, byte for byte what the clean source gives
    with zipfile.ZipFile(built) as zf:
        assert sorted(zf.namelist()) == sorted(package.FILES)
    clean = package.build_freshdesk_package(
        public_url=PUBLIC_URL, output_dir=tmp_path / "clean", version="1.4.0"
    )
    assert built.read_bytes() == clean.read_bytes()


def test_a_missing_package_file_is_refused_and_nothing_is_written(tmp_path):
    source = _copy_source(tmp_path)
    (source / "app" / "styles" / "style.css").unlink()
    out = tmp_path / "dist"
    with pytest.raises(package.PackageError, match="app/styles/style.css"):
        package.build_freshdesk_package(
            public_url=PUBLIC_URL, output_dir=out, version="1.4.0", source_dir=source
        )
    assert not out.exists() or list(out.iterdir()) == []


def test_a_linked_package_file_is_refused(tmp_path):
    source = _copy_source(tmp_path)
    outside = tmp_path / "elsewhere.json"
    outside.write_text('{"api_key": "local-only"}')
    (source / "config" / "iparams.json").unlink()
    (source / "config" / "iparams.json").symlink_to(outside)
    with pytest.raises(package.PackageError, match="link"):
        package.build_freshdesk_package(
            public_url=PUBLIC_URL, output_dir=tmp_path / "dist", version="1.4.0", source_dir=source
        )


def test_a_source_the_build_cannot_use_leaves_no_file(tmp_path):
    # given a request template that no longer names the template host
    source = _copy_source(tmp_path)
    requests = source / "config" / "requests.json"
    requests.write_text(requests.read_text().replace(package.TEMPLATE_HOST, "example.com"))
    out = tmp_path / "dist"
    out.mkdir()

    with pytest.raises(package.PackageError, match="template host"):
        package.build_freshdesk_package(
            public_url=PUBLIC_URL, output_dir=out, version="1.4.0", source_dir=source
        )

    # then nothing, not even a partial or temporary file, is in the output folder
    assert list(out.iterdir()) == []


def test_a_write_that_fails_half_way_leaves_no_file(tmp_path, monkeypatch):
    # given a disk that fails after the archive was opened
    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", full)
    out = tmp_path / "dist"
    out.mkdir()
    (out / "billing-desk-freshdesk-1.3.0.zip").write_bytes(b"an older build")

    with pytest.raises(OSError):
        package.build_freshdesk_package(public_url=PUBLIC_URL, output_dir=out, version="1.4.0")

    # then only what was there before is there
    assert [p.name for p in out.iterdir()] == ["billing-desk-freshdesk-1.3.0.zip"]
