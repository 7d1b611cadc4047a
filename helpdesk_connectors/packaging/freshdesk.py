"""The Freshdesk (FDK platform 3.0) app archive for one deployment.

``build_freshdesk_package`` copies ``freshdesk_app/`` into a zip laid out as ``fdk pack``
lays it out (``manifest.json``, ``app/``, ``config/`` at the root) with this deployment's
Billing Desk URL written in the two places that name it:

* ``config/requests.json`` › each template's ``schema.host`` (``createSession``,
  ``startEnrollment``, ``verifyEnrollment``; and ``path`` under a path prefix) — FDK 3.0 has no allowed-domains list: a request template's host is the only
  place the app may call, and the host must be a fully qualified domain name without
  protocol, port or trailing slash;
* ``app/scripts/app.js`` › ``BILLING_DESK_URL`` — where the frame loads the panel from
  and the only origin whose messages it accepts.

So the admin installing the app types one setting, the shared secret. The archive holds
exactly the files listed in ``FILES`` — whatever else the working tree has (an FDK test
iparams file, ``.fdk/``, an editor's ``app.js.orig`` or ``requests.json~``) stays out — and
is deterministic: the same inputs give byte-identical zips (sorted entries, fixed times
and permissions). It is written beside its final name and moved into place, so a failed
build leaves nothing behind.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from . import PackageError as _PackagingError
from . import read_source_file, shipped_file, zip_write

SOURCE = Path(__file__).resolve().parents[2] / "freshdesk_app"
# The host the source package names until a deployment's is written in (RFC 2606: never resolves).
TEMPLATE_HOST = "billing-desk.invalid"
TEMPLATE_URL = f"https://{TEMPLATE_HOST}"
SESSION_PATH = "/freshdesk/session/"
# Each request template and the Billing Desk path it calls (the host is the deployment's).
TEMPLATE_PATHS = {
    "createSession": SESSION_PATH,
    "startEnrollment": "/freshdesk/enroll/start/",
    "verifyEnrollment": "/freshdesk/enroll/verify/",
}
# What ``fdk pack`` puts in the archive: the manifest and the app and config folders. The
# package's files, each of them: nothing else in the source folder is shipped.
PACKAGED = ("manifest.json", "app", "config")
FILES = (
    "manifest.json",
    "app/index.html",
    "app/scripts/app.js",
    "app/styles/style.css",
    "app/styles/images/icon.svg",
    "config/iparams.json",
    "config/requests.json",
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$")
_PATH_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


class PackageError(_PackagingError):
    """The public URL, version or source package cannot make an installable archive."""


def archive_name(version: str) -> str:
    return f"billing-desk-freshdesk-{version}.zip"


def deployment_url(public_url: str) -> tuple[str, str]:
    """``(host, path_prefix)`` of the deployment, as a request template may name them.

    The FDK wants an https template whose host is a fully qualified domain name (not an IP
    address, no port); the path prefix is kept for a deployment under a sub-path.
    """
    parts = urlsplit(str(public_url).strip())
    if parts.scheme != "https":
        raise PackageError(f"The public URL must use https (got {public_url!r}).")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise PackageError("The public URL must be a plain https://host[/path] URL.")
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError as exc:
        raise PackageError(f"The public URL has an invalid port: {public_url!r}.") from exc
    if port not in (None, 443):
        raise PackageError(
            "Freshworks request templates take a domain name without a port: serve Billing "
            "Desk on 443."
        )
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise PackageError("Freshworks request templates need a domain name, not an IP address.")
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise PackageError(f"{host!r} is not a fully qualified domain name.")
    if host.endswith((".invalid", ".localhost")):
        raise PackageError(f"{host!r} is not a deployment's public host.")
    prefix = parts.path.rstrip("/")
    if not _PATH_PREFIX.match(prefix):
        raise PackageError(f"The public URL's path {parts.path!r} cannot be used.")
    return host, prefix


def _requests_json(source: bytes, *, host: str, prefix: str) -> bytes:
    templates = json.loads(source)
    if set(templates) != set(TEMPLATE_PATHS):
        raise PackageError("freshdesk_app/config/requests.json has other templates than expected.")
    for name, path in TEMPLATE_PATHS.items():
        schema = templates[name]["schema"]
        if schema.get("host") != TEMPLATE_HOST or schema.get("path") != path:
            raise PackageError(
                "freshdesk_app/config/requests.json no longer names the template host."
            )
        schema["host"] = host
        schema["path"] = prefix + path
    return (json.dumps(templates, indent=2, ensure_ascii=False) + "\n").encode()


def _app_js(source: bytes, *, url: str) -> bytes:
    text = source.decode()
    declaration = f'var BILLING_DESK_URL = "{TEMPLATE_URL}";'
    if text.count(declaration) != 1:
        raise PackageError("freshdesk_app/app/scripts/app.js no longer declares BILLING_DESK_URL.")
    return text.replace(declaration, f"var BILLING_DESK_URL = {json.dumps(url)};").encode()


def _source_files(source: Path) -> dict[str, bytes]:
    """``FILES`` as the source folder has them (regular files only, every one present)."""
    files: dict[str, bytes] = {}
    for name in FILES:
        if not shipped_file(name) or name.split("/")[0] not in PACKAGED:
            raise PackageError(f"{name} is not a Freshdesk package file.")
        try:
            files[name] = read_source_file(source, name)
        except _PackagingError as exc:
            raise PackageError(str(exc)) from None
    return files


def build_freshdesk_package(
    *, public_url: str, output_dir: Path, version: str, source_dir: Path = SOURCE
) -> Path:
    """Write ``billing-desk-freshdesk-<version>.zip`` for ``public_url`` into ``output_dir``.

    Every input is checked and every entry built before anything is written:
    :class:`PackageError` names the problem and leaves ``output_dir`` as it was.
    """
    if not _VERSION.match(str(version)):
        raise PackageError(f"{version!r} is not a package version (letters, digits, . + -).")
    host, prefix = deployment_url(public_url)
    url = f"https://{host}{prefix}"
    files = _source_files(Path(source_dir))
    files["config/requests.json"] = _requests_json(
        files["config/requests.json"], host=host, prefix=prefix
    )
    files["app/scripts/app.js"] = _app_js(files["app/scripts/app.js"], url=url)
    for name, data in files.items():
        if TEMPLATE_HOST.encode() in data:
            raise PackageError(f"{name} still names {TEMPLATE_HOST} after the build.")
    return zip_write(Path(output_dir) / archive_name(version), files)
