"""Both marketplace packages: structure, the helpdesks' validation rules, and agreement with the backend."""

from __future__ import annotations

import json
import re
import struct
import tomllib
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.urls import reverse

from helpdesk_connectors.packaging.zendesk import build_zendesk_package

ROOT = Path(__file__).resolve().parents[2]
ZAF = ROOT / "zendesk_app_manifest"

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


def _png_size(data: bytes, name: str = "image") -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
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
#
# Each rule runs on the source folder and on archives built by the package builder: what
# is uploaded to Zendesk is the archive.

DEPLOYMENT_URL = "https://billing.acme.example"
DEPLOYMENT_HOST = "billing.acme.example"
# ZAF's translation file rule: translations/<locale>.json, locale like "de" or "pt-br".
ZAF_TRANSLATION_LOCALE = re.compile(r"^[a-z]{2}(-\w{2,3})?$")
# Marketplace listing texts every translation carries (a public app's en.json must have them).
ZAF_LISTING_KEYS = {"name", "short_description", "long_description", "installation_instructions"}
ZAF_NAME_MAX = 40  # Zendesk's listing rule for the app name, spaces included


class ZafPackage:
    """One Zendesk app package, a folder or a zip archive, read the same way."""

    def __init__(self, kind: str, names: list[str], read, *, private: bool | None):
        self.kind = kind
        self.names = sorted(names)
        self._read = read
        self.expected_private = private

    def read(self, name: str) -> bytes:
        return self._read(name)

    def json(self, name: str):
        return json.loads(self.read(name).decode("utf-8"))

    @property
    def manifest(self) -> dict:
        return self.json("manifest.json")

    @property
    def translations(self) -> dict[str, dict]:
        return {
            name.removeprefix("translations/").removesuffix(".json"): self.json(name)
            for name in self.names
            if name.startswith("translations/")
        }

    @classmethod
    def folder(cls, root: Path) -> ZafPackage:
        names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        return cls("source", names, lambda name: (root / name).read_bytes(), private=None)

    @classmethod
    def archive(cls, path: Path, *, private: bool) -> ZafPackage:
        with zipfile.ZipFile(path) as archive:
            contents = {info.filename: archive.read(info) for info in archive.infolist()}
        return cls("built", list(contents), contents.__getitem__, private=private)


@pytest.fixture(scope="module")
def built_archives(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("zendesk")
    return {
        "private": build_zendesk_package(
            public_url=DEPLOYMENT_URL, output_dir=out / "private", version="2.3.1", private=True
        ),
        "public": build_zendesk_package(
            public_url=DEPLOYMENT_URL + "/",
            output_dir=out / "public",
            version="2.3.1",
            private=False,
        ),
    }


@pytest.fixture(params=["source", "built private", "built public"])
def zaf(request, built_archives) -> ZafPackage:
    if request.param == "source":
        return ZafPackage.folder(ZAF)
    visibility = request.param.removeprefix("built ")
    return ZafPackage.archive(built_archives[visibility], private=visibility == "private")


def test_zaf_package_files_exist(zaf):
    for name in [
        "manifest.json",
        "translations/en.json",
        "translations/de.json",
        "assets/logo.png",
        "assets/logo-small.png",
    ]:
        assert name in zaf.names, name
    if zaf.kind == "source":
        assert "README.md" in zaf.names


def test_zaf_archive_has_the_packager_layout(built_archives):
    # what `zcli apps:package` puts in the zip: the app's files at the root, no wrapper folder
    with zipfile.ZipFile(built_archives["private"]) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert "manifest.json" in names
    assert all(
        name == "manifest.json" or name.split("/")[0] in {"translations", "assets"}
        for name in names
    ), names
    assert not any(name.endswith("/") for name in names)  # no directory entries
    assert "README.md" not in names  # documents the source folder, not the app
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_zaf_logos_have_the_required_sizes(zaf):
    assert _png_size(zaf.read("assets/logo.png"), "logo.png") == (320, 320)
    assert _png_size(zaf.read("assets/logo-small.png"), "logo-small.png") == (128, 128)


def test_zaf_manifest_required_fields(zaf):
    manifest = zaf.manifest
    assert manifest["frameworkVersion"] == "2.0"
    assert manifest["name"]
    author = manifest["author"]
    assert author["name"] and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", author["email"])
    assert urlparse(author["url"]).scheme == "https"
    assert manifest["defaultLocale"] == "en"
    assert isinstance(manifest["private"], bool)
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", manifest["version"])
    assert f"translations/{manifest['defaultLocale']}.json" in zaf.names


def test_zaf_private_is_honest(zaf):
    # a self-hosted deployment is a private app; only a build for the Marketplace is public
    if zaf.expected_private is None:
        assert zaf.manifest["private"] is True
    else:
        assert zaf.manifest["private"] is zaf.expected_private


def test_zaf_location_is_a_signed_https_sidebar_on_the_backend(zaf):
    manifest = zaf.manifest
    assert list(manifest["location"]) == ["support"]
    assert list(manifest["location"]["support"]) == ["ticket_sidebar"]
    sidebar = manifest["location"]["support"]["ticket_sidebar"]
    assert sidebar["signed"] is True and sidebar["flexible"] is True
    url = urlparse(sidebar["url"])
    assert url.scheme == "https" and url.netloc and not url.query
    # the path Zendesk POSTs the signed token to is the backend's sidebar view
    assert url.path == reverse("zendesk-sidebar")
    # calls the app may make are whitelisted to the same host, and only to it
    assert manifest["domainWhitelist"] == [url.hostname]
    if zaf.kind == "built":
        # the deployment's own address, not the source's example host
        assert sidebar["url"] == f"{DEPLOYMENT_URL}/zendesk/sidebar/"
        assert manifest["domainWhitelist"] == [DEPLOYMENT_HOST]


def test_zaf_parameters_are_valid(zaf):
    manifest = zaf.manifest
    # The backend's address is built into the location: a setting for it would be read by
    # nothing, so the app declares none. Any parameter added later must follow ZAF's rules.
    parameters = manifest.get("parameters", [])
    assert "billing_desk_url" not in {p["name"] for p in parameters}
    names = [p["name"] for p in parameters]
    assert len(names) == len(set(names))
    for parameter in parameters:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", parameter["name"])
        assert parameter["name"] not in ZAF_RESERVED_PARAMETER_NAMES
        assert parameter["type"] in ZAF_PARAMETER_TYPES
        if parameter.get("secure"):
            # ZAF secure settings must say where they may be inserted, and need a whitelist
            assert parameter.get("scopes") and set(parameter["scopes"]) <= {"header", "body", "url"}
            assert manifest["domainWhitelist"]
        if parameter["type"] == "url" and "default" in parameter:
            assert urlparse(parameter["default"]).scheme == "https"
        if parameter["type"] == "hidden":
            assert not parameter.get("required")


def _key_paths(value, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in _key_paths(v, f"{prefix}{k}.")}
    return {prefix.rstrip(".")}


def test_zaf_translations_follow_zendesk_rules(zaf):
    manifest = zaf.manifest
    translations = zaf.translations
    assert set(translations) >= {"en", "de"}
    english_keys = _key_paths(translations["en"])
    for locale, texts in translations.items():
        assert ZAF_TRANSLATION_LOCALE.match(locale), locale
        assert isinstance(texts, dict) and isinstance(texts["app"], dict), locale
        app = texts["app"]
        assert set(app) >= ZAF_LISTING_KEYS, locale
        for key in ZAF_LISTING_KEYS:
            assert isinstance(app[key], str) and app[key].strip(), (locale, key)
        assert len(app["name"]) <= ZAF_NAME_MAX
        assert len(app["short_description"]) <= 160
        # every locale is complete: the same keys as the default locale's file
        assert _key_paths(texts) == english_keys, locale
        # each declared parameter has its label and help text in every locale
        parameters = manifest.get("parameters", [])
        assert set(app.get("parameters", {})) == {p["name"] for p in parameters}
        for parameter in parameters:
            texts_for = app["parameters"][parameter["name"]]
            assert texts_for["label"].strip() and texts_for["helpText"].strip()


def test_zaf_german_texts_are_german(zaf):
    english = zaf.translations["en"]["app"]
    german = zaf.translations["de"]["app"]
    for key in ["short_description", "long_description", "installation_instructions"]:
        assert german[key] != english[key], key
    assert "Ticket" in german["short_description"]
    # the commands an admin runs are the same in every language
    for command in ["build_helpdesk_apps", "add_installation", "--public-key-file"]:
        assert command in german["installation_instructions"]
        assert command in english["installation_instructions"]


def test_zaf_source_version_is_the_project_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert _json(ZAF / "manifest.json")["version"] == project


# The Freshdesk package (source and built archive): test_freshdesk_package.py.


# --- only the package's files; nothing left behind -------------------------------------------


def test_zaf_stray_files_in_the_source_are_not_in_the_archive(tmp_path):
    import shutil

    # given a copied app folder with backups, swap files, hidden files and other types
    source = tmp_path / "zendesk_app_manifest"
    shutil.copytree(ZAF, source)
    stray = [
        "translations/de.json~",
        "translations/.de.json.swp",
        "translations/de.json.orig",
        "translations/de.bak.json",
        "translations/notes.txt",
        "assets/.DS_Store",
        "assets/logo.orig.png",
        "assets/logo.png.bak",
        "assets/logo copy.png",
        "assets/.cache/logo.png",
        "assets/secrets.env",
        ".zat",
        "zcli.apps.config.json",
    ]
    for name in stray:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(b"local only")

    # when the archive is built from it
    built = build_zendesk_package(
        public_url=DEPLOYMENT_URL,
        output_dir=tmp_path / "dist",
        version="2.3.1",
        private=True,
        source_dir=source,
    )

    # then it holds the app's files only, byte for byte what the clean folder gives
    with zipfile.ZipFile(built) as archive:
        names = archive.namelist()
    assert names == [
        "assets/logo-small.png",
        "assets/logo.png",
        "manifest.json",
        "translations/de.json",
        "translations/en.json",
    ]
    clean = build_zendesk_package(
        public_url=DEPLOYMENT_URL, output_dir=tmp_path / "clean", version="2.3.1", private=True
    )
    assert built.read_bytes() == clean.read_bytes()


def test_zaf_a_write_that_fails_half_way_leaves_no_file(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", full)
    out = tmp_path / "dist"
    with pytest.raises(OSError):
        build_zendesk_package(
            public_url=DEPLOYMENT_URL, output_dir=out, version="2.3.1", private=True
        )
    assert list(out.iterdir()) == []
