"""Checked reads from parsed TOML tables: one-line errors that name the dotted key.

Shared by the daemon config (controller/settings.py), the sim config (sim_chargers/settings.py)
and the fleet file (sim_chargers/fleetfile.py). Each helper takes the table, the key and the
dotted path of the table so its message can name `path.key`. Reads only the file given to
`load_checked`; no other I/O.

Errors (one tree)::

    ValueError
     +-- CheckError            one line naming the key; each config module subclasses it
          +-- ConfigError      (controller.settings)
          +-- SimConfigError   (sim_chargers.settings)
          +-- FleetFileError   (sim_chargers.fleetfile)

Helpers raise the plain CheckError; a module's public entry points turn it into its own type
with `reraise_as(ModuleError)`, so callers only ever see the module's documented error.
"""

from __future__ import annotations

import contextlib
import math
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class CheckError(ValueError):
    """A TOML value is invalid; the message is one line naming the key."""


@contextlib.contextmanager
def reraise_as(error: type[CheckError], prefix: str = "") -> Iterator[None]:
    """Turn any CheckError raised inside into `error`, its message prefixed with `prefix`."""
    try:
        yield
    except CheckError as exc:
        if type(exc) is error and not prefix:
            raise
        raise error(f"{prefix}{exc}") from None


def load_checked(path: str | Path, parse: Callable[[dict[str, Any]], T], *,
                 error: type[CheckError], what: str = "config file") -> T:
    """Read a TOML file and build it with `parse`; every error is one line naming the file.

    Raises:
        error: the file is missing, unreadable, not TOML, or `parse` rejects it.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{p}: no such {what}") from None
    except OSError as exc:
        raise error(f"{p}: cannot read {what}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{p}: not valid TOML: {exc}") from None
    with reraise_as(error, f"{p}: "):
        return parse(doc)


def where(path: str, key: str) -> str:
    """Dotted name of `key` inside the table at `path` ("" = the document root)."""
    return f"{path}.{key}" if path else key


def table(raw: Any, path: str, allowed: set[str] | None = None) -> dict[str, Any]:
    """`raw` as a table; with `allowed`, any other key is an error."""
    if not isinstance(raw, Mapping):
        raise CheckError(f"{path}: expected a table, got {type(raw).__name__}")
    if allowed is not None:
        reject_unknown(raw, allowed, path)
    return dict(raw)


def reject_unknown(tbl: Mapping[str, Any], allowed: set[str], path: str) -> None:
    """Unknown keys are errors (SPEC §3.2); the message lists the allowed ones."""
    for key in tbl:
        if key not in allowed:
            raise CheckError(
                f"unknown key {where(path, key)!r}; allowed here: {', '.join(sorted(allowed))}")


def _get(tbl: Mapping[str, Any], key: str, path: str, default: Any) -> Any:
    if key not in tbl and default is None:
        raise CheckError(f"{where(path, key)}: required")
    return tbl.get(key, default)


def num(tbl: Mapping[str, Any], key: str, path: str, default: float | None, *,
        lo: float | None = None, hi: float | None = None, positive: bool = False) -> float:
    """A finite number (bool is not one) within [lo, hi], > 0 if `positive`.

    `default` None makes the key required.
    """
    val = _get(tbl, key, path, default)
    if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
        raise CheckError(f"{where(path, key)}: expected a finite number, got {val!r}")
    if positive and val <= 0:
        raise CheckError(f"{where(path, key)}: must be > 0, got {val!r}")
    if lo is not None and val < lo:
        raise CheckError(f"{where(path, key)}: must be >= {lo}, got {val!r}")
    if hi is not None and val > hi:
        raise CheckError(f"{where(path, key)}: must be <= {hi}, got {val!r}")
    return float(val)


def integer(tbl: Mapping[str, Any], key: str, path: str, default: int | None, *,
            lo: int, hi: int) -> int:
    """An integer (bool is not one) within [lo, hi]; `default` None makes the key required."""
    val = _get(tbl, key, path, default)
    if isinstance(val, bool) or not isinstance(val, int) or not lo <= val <= hi:
        raise CheckError(f"{where(path, key)}: expected an integer {lo}..{hi}, got {val!r}")
    return val


def string(tbl: Mapping[str, Any], key: str, path: str, default: str | None, *,
           non_empty: bool = False) -> str | None:
    """A string, or `default` (which may be None) when the key is absent."""
    val = tbl.get(key, default)
    if val is not None and (not isinstance(val, str) or (non_empty and not val)):
        kind = "a non-empty string" if non_empty else "a string"
        raise CheckError(f"{where(path, key)}: expected {kind}, got {val!r}")
    return val


def req_string(tbl: Mapping[str, Any], key: str, path: str) -> str:
    """A required non-empty string."""
    val = string(tbl, key, path, None)
    if not val:
        raise CheckError(f"{where(path, key)}: required (a non-empty string)")
    return val


def boolean(tbl: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    """true or false."""
    val = tbl.get(key, default)
    if not isinstance(val, bool):
        raise CheckError(f"{where(path, key)}: expected true or false, got {val!r}")
    return val


def choice(tbl: Mapping[str, Any], key: str, path: str, default: str,
           choices: tuple[str, ...]) -> str:
    """One of `choices`."""
    val = tbl.get(key, default)
    if val not in choices:
        raise CheckError(
            f"{where(path, key)}: expected one of {', '.join(choices)}; got {val!r}")
    return str(val)


def array(tbl: Mapping[str, Any], key: str, path: str) -> list[Any]:
    """An array (empty when the key is absent)."""
    val = tbl.get(key, [])
    if not isinstance(val, list):
        raise CheckError(f"{where(path, key)}: expected an array, got {val!r}")
    return val
