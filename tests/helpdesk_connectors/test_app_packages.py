"""Both marketplace packages: structure, the helpdesks' validation rules, and agreement with the backend."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.urls import reverse

from helpdesk_connectors.freshdesk.connector import API_KEY_HEADER, SECRET_HEADER

ROOT = Path(__file__).resolve().parents[2]
ZAF = ROOT / "zendesk_app_manifest"
FDK = ROOT / "freshdesk_app"

# ZAF parameter types and Support locations this package may use.
ZAF_PARAMETER_TYPES = {
    "text",
    "password",
    "checkbox",
    "url",
    "number",
    "multiline",
    "hidden",
    "oauth",
}
ZAF_RESERVED_PARAMETER_NAMES = {"title", "token", "name"}


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    # every chunk's CRC is right (a truncated or hand-edited file would fail Zendesk's upload)
    offset = 8
    while offset < len(data):
        size, chunk = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + size]
        (crc,) = struct.unpack(">I", data[offset + 8 + size : offset + 12 + size])
        assert zlib.crc32(chunk + body) & 0xFFFFFFFF == crc
        offset += 12 + size
    return width, height


# --- Zendesk ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest():
    return _json(ZAF / "manifest.json")


def test_zaf_package_files_exist():
    for name in [
        "manifest.json",
        "translations/en.json",
        "assets/logo.png",
        "assets/logo-small.png",
        "README.md",
    ]:
        assert (ZAF / name).is_file(), name


def test_zaf_logos_have_the_required_sizes():
    assert _png_size(ZAF / "assets" / "logo.png") == (320, 320)
    assert _png_size(ZAF / "assets" / "logo-small.png") == (128, 128)


def test_zaf_manifest_required_fields(manifest):
    assert manifest["frameworkVersion"] == "2.0"
    assert manifest["name"]
    author = manifest["author"]
    assert author["name"] and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", author["email"])
    assert urlparse(author["url"]).scheme == "https"
    assert manifest["defaultLocale"] == "en"
    assert isinstance(manifest["private"], bool)
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", manifest["version"])
    assert (ZAF / "translations" / f"{manifest['defaultLocale']}.json").is_file()


def test_zaf_location_is_a_signed_https_sidebar_on_the_backend(manifest):
    assert list(manifest["location"]) == ["support"]
    assert list(manifest["location"]["support"]) == ["ticket_sidebar"]
    sidebar = manifest["location"]["support"]["ticket_sidebar"]
    assert sidebar["signed"] is True and sidebar["flexible"] is True
    url = urlparse(sidebar["url"])
    assert url.scheme == "https" and url.netloc and not url.query
    # the path Zendesk POSTs the signed token to is the backend's sidebar view
    assert url.path == reverse("zendesk-sidebar")
    # calls the app may make are whitelisted to the same host
    assert url.hostname in manifest["domainWhitelist"]


def test_zaf_parameters_are_valid(manifest):
    names = [p["name"] for p in manifest["parameters"]]
    assert len(names) == len(set(names))
    for parameter in manifest["parameters"]:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", parameter["name"])
        assert parameter["name"] not in ZAF_RESERVED_PARAMETER_NAMES
        assert parameter["type"] in ZAF_PARAMETER_TYPES
        if parameter.get("secure"):
            # ZAF secure settings must say where they may be inserted, and need a whitelist
            assert parameter.get("scopes") and set(parameter["scopes"]) <= {"header", "body", "url"}
            assert manifest["domainWhitelist"]
        if parameter["type"] == "url" and "default" in parameter:
            assert urlparse(parameter["default"]).scheme == "https"
    backend = next(p for p in manifest["parameters"] if p["name"] == "billing_desk_url")
    sidebar = urlparse(manifest["location"]["support"]["ticket_sidebar"]["url"])
    assert urlparse(backend["default"]).netloc == sidebar.netloc


def test_zaf_translations_have_every_listing_field(manifest):
    app = _json(ZAF / "translations" / "en.json")["app"]
    for key in ["name", "short_description", "long_description", "installation_instructions"]:
        assert isinstance(app[key], str) and app[key].strip(), key
    assert len(app["short_description"]) <= 160
    for parameter in manifest["parameters"]:
        texts = app["parameters"][parameter["name"]]
        assert texts["label"].strip() and texts["helpText"].strip()
    assert set(app["parameters"]) == {p["name"] for p in manifest["parameters"]}


# --- Freshdesk ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fdk_manifest():
    return _json(FDK / "manifest.json")


def test_fdk_package_files_exist():
    for name in [
        "manifest.json",
        "app/index.html",
        "app/scripts/app.js",
        "app/styles/style.css",
        "app/styles/images/icon.svg",
        "config/iparams.json",
        "config/requests.json",
        "README.md",
    ]:
        assert (FDK / name).is_file(), name


def test_fdk_manifest(fdk_manifest):
    assert fdk_manifest["platform-version"] == "3.0"
    sidebar = fdk_manifest["modules"]["support_ticket"]["location"]["ticket_sidebar"]
    assert sidebar == {"url": "index.html", "icon": "styles/images/icon.svg"}
    assert (FDK / "app" / sidebar["url"]).is_file()
    assert (FDK / "app" / sidebar["icon"]).is_file()
    assert set(fdk_manifest["engines"]) == {"node", "fdk"}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in fdk_manifest["engines"].values())
    # every request template used is declared, and every declared one exists
    templates = _json(FDK / "config" / "requests.json")
    assert set(fdk_manifest["modules"]["common"]["requests"]) == set(templates)


def test_fdk_index_loads_the_app_client_then_the_app():
    html = (FDK / "app" / "index.html").read_text()
    client_at = html.index('src="{{{appclient}}}"')
    assert client_at < html.index('src="scripts/app.js"')
    assert 'href="styles/style.css"' in html


def test_fdk_icon_is_svg():
    svg = (FDK / "app" / "styles" / "images" / "icon.svg").read_text()
    assert svg.lstrip().startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg


def test_fdk_iparams(fdk_manifest):
    iparams = _json(FDK / "config" / "iparams.json")
    assert set(iparams) == {"billing_desk_host", "shared_secret", "api_key"}
    for name, spec in iparams.items():
        assert spec["display_name"] and spec["description"] and spec["type"], name
        assert spec["required"] is True
    assert iparams["shared_secret"]["secure"] is True
    assert iparams["api_key"]["secure"] is True
    # FDK substitutes only non-secure iparams into a template's host
    assert iparams["billing_desk_host"]["secure"] is False


def test_fdk_session_template_matches_the_backend():
    template = _json(FDK / "config" / "requests.json")["createSession"]["schema"]
    assert template["method"] == "POST"
    assert template.get("protocol", "https") == "https"
    assert template["host"] == "<%= iparam.billing_desk_host %>"
    assert template["path"] == reverse("freshdesk-session")
    headers = template["headers"]
    assert headers[SECRET_HEADER] == "<%= iparam.shared_secret %>"
    assert headers[API_KEY_HEADER] == "<%= iparam.api_key %>"
    assert headers["Content-Type"] == "application/json"


def test_fdk_app_uses_the_backend_paths_and_body_fields():
    js = (FDK / "app" / "scripts" / "app.js").read_text()
    assert f'PANEL_PATH = "{reverse("freshdesk-panel")}"' in js
    assert 'invokeTemplate("createSession"' in js
    assert 'client.events.on("app.activated"' in js
    for field in ["agent_id", "domain", "ticket_id", "requester_email"]:
        assert f"{field}:" in js
    for key in ['"loggedInUser"', '"ticket"', '"requester"', '"domainName"']:
        assert f"client.data.get({key})" in js
    # secrets are never read by the browser
    assert "shared_secret" not in js and "api_key" not in js
