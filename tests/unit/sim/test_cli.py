"""`python -m sim_chargers`: help, one-line errors on bad config, a bounded run."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim_chargers.cli import main


def test_help_documents_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in ("--config", "--duration", "--log-level", "--no-uvloop"):
        assert option in out


@pytest.mark.parametrize(("sim_toml", "fleet_toml", "message"), [
    ('[sim]\nfleet = "fleet.toml"\nbogus = 1\n', "", "unknown key 'sim.bogus'"),
    ('[sim]\nfleet = "fleet.toml"\n', '[[group]]\nmodel = "Trabant"\ncount = 1\n'
     'charger_kw = 11\nsoc = 0.5\n', "unknown vehicle model 'Trabant'"),
    ('[sim]\nfleet = "missing.toml"\n', "", "no such fleet file"),
    ('[sim]\nfleet = "fleet.toml"\n[frequency]\ntrace = "t.csv"\n',
     '[[group]]\nmodel = "Renault Zoe"\ncount = 1\ncharger_kw = 11\nsoc = 0.5\n',
     "no such trace file"),
])
def test_bad_config_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          sim_toml: str, fleet_toml: str,
                                          message: str) -> None:
    (tmp_path / "sim.toml").write_text(sim_toml)
    (tmp_path / "fleet.toml").write_text(fleet_toml)
    assert main(["--config", str(tmp_path / "sim.toml")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_a_bounded_run_without_a_csms_exits_0(tmp_path: Path) -> None:
    (tmp_path / "fleet.toml").write_text(
        '[[group]]\nmodel = "Renault Zoe"\ncount = 2\ncharger_kw = 11\nsoc = 0.5\n')
    (tmp_path / "sim.toml").write_text(
        '[sim]\nfleet = "fleet.toml"\n[csms]\nurl = "ws://127.0.0.1:9"\n'
        "[site_meter]\nport = 9\n")
    assert main(["--config", str(tmp_path / "sim.toml"), "--duration", "0.3",
                 "--log-level", "ERROR"]) == 0
