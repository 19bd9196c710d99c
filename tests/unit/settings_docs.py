"""The config documents the daemon settings tests start from, and their one-line-error check."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from controller.settings import ConfigError, parse_settings

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "config" / "v2ghub.minimal.toml"
EXAMPLE = ROOT / "config" / "v2ghub.example.toml"


def minimal_doc() -> dict:
    return tomllib.loads(MINIMAL.read_text())


def assert_one_line_error(mutate, message: str) -> None:
    """The minimal file changed by `mutate` is rejected with one line containing `message`."""
    doc = minimal_doc()
    mutate(doc)
    with pytest.raises(ConfigError) as err:
        parse_settings(doc)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
