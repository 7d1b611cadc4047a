"""The Freshdesk (FDK 3.0) app archive for one deployment (issue 16; helper H2 writes it)."""

from __future__ import annotations

from pathlib import Path


def build_freshdesk_package(*, public_url: str, output_dir: Path, version: str) -> Path:
    raise NotImplementedError("H2 in progress")
