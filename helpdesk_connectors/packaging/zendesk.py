"""The Zendesk (ZAF v2) app archive for one deployment (issue 16; helper H1 writes it)."""

from __future__ import annotations

from pathlib import Path


def build_zendesk_package(*, public_url: str, output_dir: Path, version: str, private: bool) -> Path:
    raise NotImplementedError("H1 in progress")
