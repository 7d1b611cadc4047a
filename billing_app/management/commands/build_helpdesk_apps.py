"""``manage.py build_helpdesk_apps`` — the Zendesk and Freshdesk app archives for this deployment."""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from helpdesk_connectors.packaging import PackageError, file_replace, public_url_check
from helpdesk_connectors.packaging.freshdesk import build_freshdesk_package
from helpdesk_connectors.packaging.zendesk import build_zendesk_package

HELPDESKS = ("zendesk", "freshdesk")
DEFAULT_OUTPUT_DIR = Path("dist") / "helpdesk-apps"


class Command(BaseCommand):
    help = (
        "Write ready-to-upload helpdesk app archives for this deployment: "
        "billing-desk-zendesk-<version>.zip and billing-desk-freshdesk-<version>.zip, with the "
        "server's public https address (BILLING_DESK_PUBLIC_URL, or --public-url) in the app "
        "locations, allowed domains and request templates. The address must be https://host "
        "(optionally :port) with no path; http is refused, localhost included. The Zendesk app "
        "is private (for your own accounts) unless --public. The version is the project's "
        "(pyproject.toml). Bad input is refused and nothing is written."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--public-url",
            default=None,
            help="The server's public https address (default: $BILLING_DESK_PUBLIC_URL).",
        )
        parser.add_argument(
            "--output-dir",
            default=str(DEFAULT_OUTPUT_DIR),
            help=f"Where to write the archives (default: {DEFAULT_OUTPUT_DIR}).",
        )
        parser.add_argument(
            "--only", choices=HELPDESKS, default=None, help="Build one helpdesk's archive only."
        )
        parser.add_argument(
            "--public",
            action="store_true",
            help="Zendesk: build a public (Marketplace) app; without it the app is private.",
        )

    def handle(self, *args, **options) -> None:
        only = options["only"]
        if only is not None and only not in HELPDESKS:  # call_command() bypasses argparse choices
            raise CommandError(
                f"Unknown helpdesk {only!r}: use one of {', '.join(HELPDESKS)}. Nothing was written."
            )
        url = options["public_url"]
        if url is None:
            url = settings.PUBLIC_BASE_URL
        try:
            public = public_url_check(url)
        except PackageError as exc:
            raise CommandError(f"{exc} Nothing was written.") from None
        output_dir = Path(options["output_dir"])
        if output_dir.exists() and not output_dir.is_dir():
            raise CommandError(f"{str(output_dir)!r} is not a folder. Nothing was written.")
        version = project_version()
        author = getattr(settings, "HELPDESK_APP_AUTHOR", None) or None

        builders = {
            "zendesk": lambda staging: build_zendesk_package(
                public_url=public.base,
                output_dir=staging,
                version=version,
                private=not options["public"],
                author=author,
            ),
            "freshdesk": lambda staging: build_freshdesk_package(
                public_url=public.base, output_dir=staging, version=version
            ),
        }
        # Build every archive in a staging folder first: a package that fails leaves the
        # output folder as it was.
        with tempfile.TemporaryDirectory(prefix="billing-desk-apps-") as staging:
            built = []
            for helpdesk in [only] if only else HELPDESKS:
                try:
                    built.append(Path(builders[helpdesk](Path(staging))))
                except ValueError as exc:  # each builder's PackageError is a ValueError
                    raise CommandError(
                        f"{helpdesk.capitalize()} package: {exc} Nothing was written."
                    ) from None
            try:
                paths = [_move_into(path, output_dir) for path in built]
            except OSError as exc:
                raise CommandError(
                    f"Cannot write the packages into {str(output_dir)!r}: {exc.strerror or exc}."
                ) from None
        for path in paths:
            self.stdout.write(str(path))
        if author is None and (only in (None, "zendesk")):
            self.stderr.write(
                "The Zendesk app names the source's placeholder author: set "
                "BILLING_DESK_APP_AUTHOR_EMAIL (and BILLING_DESK_APP_AUTHOR_NAME, "
                "BILLING_DESK_APP_AUTHOR_URL) to your support contact and build again."
            )


def _move_into(path: Path, output_dir: Path) -> Path:
    """Copy ``path`` into ``output_dir`` under its name, replacing an older build atomically."""
    with path.open("rb") as source:
        return file_replace(
            output_dir / path.name, lambda target: shutil.copyfileobj(source, target)
        )


def project_version() -> str:
    """The release version from ``pyproject.toml`` (``[project] version``)."""
    path = Path(settings.BASE_DIR) / "pyproject.toml"
    try:
        with path.open("rb") as handle:
            version = tomllib.load(handle)["project"]["version"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise CommandError(f"Cannot read the project version from {path}: {exc}.") from None
    return str(version)
