"""Ready-to-upload helpdesk app packages built for one deployment (issue 16).

``manage.py build_helpdesk_apps`` calls one builder per helpdesk
(:mod:`.zendesk`, :mod:`.freshdesk`). What they share lives here:

* :func:`public_url_check` — the deployment's public address, as the helpdesks will
  reach it: ``https://host[:port]`` with nothing after the host but an optional
  ``/``. Plain ``http`` is refused outright, ``localhost`` included: Zendesk's
  package validator accepts an absolute location URL only over https (localhost
  aside, which only the developer's own browser reaches) and both helpdesks frame
  the panel in an https page. For local trials use the demo connector, or an https
  tunnel to the dev server.
* :func:`shipped_file` / :func:`read_source_file` — what a package may take from its
  source folder: regular files of the package's types (json, html, js, css, svg, png)
  with plain names; never a hidden file or folder, an editor's backup or swap file
  (``app.js~``, ``.app.js.swp``, ``app.js.orig``, ``logo.bak.png``), a link, or anything
  else a working tree collects.
* :func:`zip_write` — a deterministic zip archive: entries sorted, fixed timestamps
  and permissions, written next to its final name and moved into place, so the same
  input gives the same bytes and a failed build leaves no half-written file
  (:func:`file_replace`, which the build command also copies the archives with).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

# The earliest date a zip entry can carry: no build time leaks into the archive.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644  # regular file, rw-r--r--
ZIP_CREATE_SYSTEM_UNIX = 3

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class PackageError(ValueError):
    """Bad input for a package build (the public URL, the source folder); nothing was written."""


@dataclass(frozen=True)
class PublicUrl:
    """The deployment's public address, checked: ``base`` has no trailing slash."""

    base: str  # "https://billing.example.com" or "https://billing.example.com:8443"
    host: str  # "billing.example.com" (no port): what the helpdesks whitelist

    def join(self, path: str) -> str:
        return f"{self.base}{path}"


def public_url_check(value: str | None) -> PublicUrl:
    """The deployment's public URL, or :class:`PackageError` saying what is wrong with it."""
    text = (value or "").strip()
    if not text:
        raise PackageError(
            "No public URL: set BILLING_DESK_PUBLIC_URL or pass --public-url "
            "(e.g. https://billing.example.com)."
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise PackageError(f"{text!r} is not a URL: {exc}.") from None
    if parts.scheme.lower() != "https":
        raise PackageError(
            f"{text!r} is not an https URL. Zendesk accepts a location URL only over https "
            "(apart from localhost, which only a developer's own browser reaches) and the "
            "helpdesks frame the panel in an https page: give the server's https address "
            "(http is refused, localhost included)."
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise PackageError(f"{text!r} has no host name (e.g. https://billing.example.com).")
    if port == 0:
        raise PackageError(f"{text!r} has port 0: give the port the server listens on, or none.")
    if parts.username is not None or parts.password is not None:
        raise PackageError(f"{text!r} carries a user name or password: give the address only.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise PackageError(
            f"{text!r} has a path, query or fragment: give the server's address only "
            "(https://host, optionally with a port), Billing Desk adds its own paths."
        )
    if not _is_host(host):
        raise PackageError(f"{host!r} is not a valid host name.")
    netloc = host if port in (None, 443) else f"{host}:{port}"
    if ":" in host:  # an IPv6 literal keeps its brackets in a URL
        netloc = f"[{host}]" if port in (None, 443) else f"[{host}]:{port}"
    return PublicUrl(base=f"https://{netloc}", host=host)


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return True
    if len(host) > 253:
        return False
    return all(_HOST_LABEL.match(label) for label in host.split("."))


# The file types a helpdesk app package is made of.
PACKAGE_FILE_TYPES = frozenset({"json", "html", "js", "css", "svg", "png"})
# A plain file name: letters, digits, "-" and "_", parts joined by single dots, no
# leading dot (hidden files, vim swap files), no "~" or "#" (editor backups and locks).
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$")
# Name parts that mark a copy rather than the file itself ("app.orig.js", "logo.bak.png").
_COPY_MARKS = frozenset(
    {"orig", "rej", "bak", "backup", "swp", "swo", "tmp", "temp", "old", "copy"}
)


def shipped_file(relative: str, types: frozenset[str] = PACKAGE_FILE_TYPES) -> bool:
    """Whether ``relative`` (a posix path inside the source folder) names a package file.

    Folders and names must be plain (no hidden folder such as ``.git`` or ``.fdk``), the
    last suffix one of ``types``, and no part of the name may mark a copy or backup.
    """
    parts = relative.split("/")
    if any(not part or part.startswith(".") for part in parts):
        return False
    name = parts[-1]
    if not _PLAIN_NAME.match(name):
        return False
    pieces = name.lower().split(".")
    return pieces[-1] in types and not _COPY_MARKS.intersection(pieces[1:])


def read_source_file(root: Path, relative: str) -> bytes:
    """The bytes of ``root/relative``, which must be a regular file (not a link) inside ``root``."""
    path = root / relative
    if path.is_symlink() or not path.resolve().is_relative_to(root.resolve()):
        raise PackageError(f"{relative} in {root} is a link: a package ships regular files only.")
    if not path.is_file():
        raise PackageError(f"The app source {root} has no {relative}.")
    return path.read_bytes()


def zip_write(path: Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` (archive name → bytes) as a deterministic zip at ``path``; return it.

    Names are sorted, every entry has the same timestamp and mode, no directory
    entries: the layout Zendesk's and Freshworks' packagers produce (files at the
    archive root, folders implied by the names).
    """
    for name in files:
        if name.startswith("/") or ".." in name.split("/") or "\\" in name:
            raise PackageError(f"Refusing the archive entry {name!r}.")

    def write(raw: BinaryIO) -> None:
        with zipfile.ZipFile(raw, "w") as archive:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = ZIP_CREATE_SYSTEM_UNIX
                info.external_attr = ZIP_FILE_MODE << 16
                archive.writestr(info, files[name], compresslevel=9)

    return file_replace(path, write)


def file_replace(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through ``write`` next to ``path`` and move it into place (mode 0644):
    readers see the old file or the whole new one, and a failure leaves no temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as raw:
            write(raw)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
