"""controller/tomlcheck.py: the checked reads shared by the daemon, sim and fleet files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller import tomlcheck as tc
from controller.settings import ConfigError
from sim_chargers.fleetfile import FleetFileError
from sim_chargers.settings import SimConfigError


@pytest.mark.parametrize(("read", "message"), [
    (lambda t: tc.num(t, "x", "a", 1.0, hi=2), "a.x: must be <= 2"),
    (lambda t: tc.num(t, "n", "a", 1.0, positive=True), "a.n: must be > 0"),
    (lambda t: tc.num(t, "b", "a", 1.0), "a.b: expected a finite number, got True"),
    (lambda t: tc.num(t, "missing", "a", None), "a.missing: required"),
    (lambda t: tc.integer(t, "f", "a", 1, lo=0, hi=9), "a.f: expected an integer 0..9"),
    (lambda t: tc.string(t, "e", "a", None, non_empty=True), "a.e: expected a non-empty string"),
    (lambda t: tc.boolean(t, "x", "a", True), "a.x: expected true or false"),
    (lambda t: tc.choice(t, "e", "a", "u", ("u", "t")), "a.e: expected one of u, t"),
    (lambda t: tc.table(t, "a", {"x"}), "unknown key 'a.n'; allowed here: x"),
    (lambda t: tc.array(t, "x", "a"), "a.x: expected an array"),
])
def test_each_reader_names_the_dotted_key(read: Any, message: str) -> None:
    with pytest.raises(tc.CheckError) as err:
        read({"x": 3, "n": -1, "b": True, "f": 1.5, "e": ""})
    assert message in str(err.value)


def test_absent_keys_take_their_default() -> None:
    assert tc.num({}, "x", "a", 1.5) == 1.5
    assert tc.string({}, "x", "a", None) is None
    assert tc.table({"x": 1}, "a") == {"x": 1}


@pytest.mark.parametrize("error", [ConfigError, SimConfigError, FleetFileError])
def test_each_module_sees_only_its_own_error_type(error: type[tc.CheckError],
                                                  tmp_path: Path) -> None:
    with pytest.raises(error, match=r"a\.x: must be <= 2") as err, tc.reraise_as(error):
        tc.num({"x": 3}, "x", "a", 1.0, hi=2)
    assert type(err.value) is error
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [")
    with pytest.raises(error, match=r"bad\.toml: not valid TOML"):
        tc.load_checked(bad, dict, error=error)
    bad.write_text("x = 3")
    with pytest.raises(error, match=r"bad\.toml: a\.x: must be <= 2"):
        tc.load_checked(bad, lambda d: tc.num(d, "x", "a", 1.0, hi=2), error=error)
    with pytest.raises(error, match="no such fleet file"):
        tc.load_checked(tmp_path / "none.toml", dict, error=error, what="fleet file")
