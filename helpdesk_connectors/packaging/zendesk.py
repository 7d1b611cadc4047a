"""The Zendesk (ZAF v2) app archive for one deployment (issue 16).

Source: ``zendesk_app_manifest/`` (``manifest.json``, ``translations/*.json``,
``assets/*.png|svg``; nothing else in the folder is shipped). The archive has the layout ``zcli apps:package`` gives — those files
at the zip root — with the manifest written for the deployment:

* ``location.support.ticket_sidebar.url`` — ``<public URL>/zendesk/sidebar/``, the
  view Zendesk POSTs the signed token to (the URL is built in: the app has no
  setting for it);
* ``domainWhitelist`` — the deployment's host;
* ``private`` — true for a self-hosted deployment (an app uploaded to the owner's
  own accounts), false only when the build is for a Marketplace listing;
* ``version`` — the release being built;
* ``author`` — replaced when the deployment names one (else the source's).

The README stays out of the archive: it documents the source folder, not the app.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.urls import reverse

from . import PackageError, public_url_check, read_source_file, shipped_file, zip_write

SOURCE_DIR = Path(__file__).resolve().parents[2] / "zendesk_app_manifest"
ARCHIVE_NAME = "billing-desk-zendesk-{version}.zip"
# Zendesk's packager takes the app folder; these are the parts of ours that are the app,
# each with the file types it holds. Hidden files and folders, editor backups and swap
# files (``de.json~``, ``.de.json.swp``, ``logo.orig.png``) and other types stay out.
SHIPPED_FOLDERS = {"translations": frozenset({"json"}), "assets": frozenset({"png", "svg"})}
# ZAF's rule for translation file names: translations/<locale>.json, locale "de" or "pt-br".
TRANSLATION_LOCALE = re.compile(r"^[a-z]{2}(-\w{2,3})?$")
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
AUTHOR_FIELDS = ("name", "email", "url")


def build_zendesk_package(
    *,
    public_url: str,
    output_dir: Path,
    version: str,
    private: bool,
    author: Mapping[str, str] | None = None,
    source_dir: Path = SOURCE_DIR,
) -> Path:
    """Write ``billing-desk-zendesk-<version>.zip`` into ``output_dir``; return its path.

    Every input is checked before anything is written: :class:`PackageError` names
    the problem and leaves ``output_dir`` untouched.
    """
    files = zendesk_package_files(
        public_url=public_url,
        version=version,
        private=private,
        author=author,
        source_dir=source_dir,
    )
    return zip_write(Path(output_dir) / ARCHIVE_NAME.format(version=version), files)


def zendesk_package_files(
    *,
    public_url: str,
    version: str,
    private: bool,
    author: Mapping[str, str] | None = None,
    source_dir: Path = SOURCE_DIR,
) -> dict[str, bytes]:
    """The archive's entries (name → bytes), the manifest written for this deployment."""
    public = public_url_check(public_url)
    if not VERSION.match(version or ""):
        raise PackageError(f"{version!r} is not a release version (e.g. 1.2.0).")
    manifest = _read_json(source_dir / "manifest.json")
    if not isinstance(manifest, dict):
        raise PackageError("zendesk_app_manifest/manifest.json is not a JSON object.")
    try:
        sidebar = manifest["location"]["support"]["ticket_sidebar"]
    except (KeyError, TypeError):
        raise PackageError(
            "zendesk_app_manifest/manifest.json has no location.support.ticket_sidebar."
        ) from None
    sidebar["url"] = public.join(reverse("zendesk-sidebar"))
    manifest["domainWhitelist"] = [public.host]
    manifest["private"] = bool(private)
    manifest["version"] = version
    if author:
        manifest["author"] = _author(author)

    files = {"manifest.json": _json_bytes(manifest)}
    for folder, types in SHIPPED_FOLDERS.items():
        root = source_dir / folder
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(source_dir).as_posix()
            if path.is_dir() or not shipped_file(relative, types):
                continue  # hidden files and folders, backups, other file types: not the app
            files[relative] = read_source_file(source_dir, relative)
    _check_translations(files, manifest)
    return files


def _author(author: Mapping[str, str]) -> dict[str, str]:
    values = {field: str(author.get(field) or "").strip() for field in AUTHOR_FIELDS}
    missing = [field for field, value in values.items() if not value]
    if missing:
        raise PackageError(f"The app author needs {', '.join(missing)} (name, email and url).")
    if not EMAIL.match(values["email"]):
        raise PackageError(f"The app author's email {values['email']!r} is not an email address.")
    if not values["url"].startswith("https://"):
        raise PackageError(f"The app author's url {values['url']!r} must be an https URL.")
    return values


def _check_translations(files: Mapping[str, bytes], manifest: Mapping[str, Any]) -> None:
    locales = []
    for name, data in files.items():
        if not name.startswith("translations/"):
            continue
        locale = name.removeprefix("translations/").removesuffix(".json")
        if not name.endswith(".json") or not TRANSLATION_LOCALE.match(locale):
            raise PackageError(
                f"{name}: Zendesk expects translations/<locale>.json (e.g. de.json)."
            )
        try:
            texts = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PackageError(f"{name} is not valid JSON: {exc}.") from None
        if not isinstance(texts, dict) or not isinstance(texts.get("app"), dict):
            raise PackageError(f'{name} has no "app" object.')
        locales.append(locale)
    default = manifest.get("defaultLocale")
    if default not in locales:
        raise PackageError(f"No translations/{default}.json for the manifest's defaultLocale.")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PackageError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except ValueError as exc:
        raise PackageError(f"{path} is not valid JSON: {exc}.") from None


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
