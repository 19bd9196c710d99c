"""`v2ghub trace`: writes a readable trace CSV, lists the library, one-line errors with exit 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from controller.tools.trace import add_subparser, main
from sim_chargers import tracelib
from sim_chargers.traces import load_trace


def test_writes_a_trace_that_loads_back_equal_to_the_library(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "aug.csv"
    assert main(["gb-2019-08-09", "--out", str(out)]) == 0
    tr = load_trace(out)
    ref = tracelib.generate("gb-2019-08-09")
    assert np.array_equal(tr.t_s, ref.t_s)
    assert np.array_equal(tr.f_hz, ref.f_hz)
    stdout = capsys.readouterr().out
    assert stdout.startswith(f"wrote {out}: gb-2019-08-09, 3601 samples over 360 s at 10 Hz")
    assert "48.800-50.000 Hz" in stdout


def test_seconds_seed_and_rate_options_shape_the_file(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    args = ["gb-normal", "--seconds", "120", "--rate-hz", "50"]
    assert main([*args, "--seed", "4", "--out", str(a)]) == 0
    assert main([*args, "--seed", "4", "--out", str(b)]) == 0
    assert main([*args, "--seed", "5", "--out", str(c)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    tr = load_trace(a)
    assert tr.duration_s == 120.0
    assert len(tr.t_s) == 120 * 50 + 1


def test_ramp_depth_and_duration_are_options(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert main(["ramp-up", "--depth-hz", "0.2", "--ramp-s", "4", "--seconds", "60",
                 "--out", str(out)]) == 0
    tr = load_trace(out)
    assert tr.f_at(12.0) == pytest.approx(50.1)  # 10 s at 50 Hz, then 0.05 Hz/s
    assert tr.f_at(14.0) == 50.2
    assert float(tr.f_hz.max()) == 50.2


def test_dash_writes_the_csv_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step-dm-l-knee", "--seconds", "12", "--rate-hz", "1", "--out", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "t_s,f_hz"
    assert lines[4] == "3.0,49.9"  # lead shrinks to seconds / 6 = 2 s
    assert len(lines) == 14


def test_list_prints_every_name_with_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(tracelib.TRACES)
    assert all(len(line.split()) > 3 for line in lines)
    assert any(line.startswith("step-dc-l-knee ") and "49.800 Hz" in line for line in lines)


def test_unknown_name_exits_2_with_one_line_listing_the_known_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.csv"
    assert main(["blackout", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown trace 'blackout'; known: gb-normal," in err
    assert "step-dr-h-sat" in err
    assert not out.exists()


@pytest.mark.parametrize(("options", "message"), [
    (["--seconds", "abc"], "invalid float value: 'abc'"),
    (["--seconds", "0"], "seconds: must be within 1..86400"),
    (["--seconds", "-3"], "seconds: must be within"),
    (["--seconds", "nan"], "seconds: must be within"),
    (["--seconds", "1e9"], "seconds: must be within"),
    (["--rate-hz", "100"], "rate_hz: must be within (0, 50] Hz"),
    (["--seed", "-1"], "seed: must be a non-negative integer"),
    (["--seed", "1.5"], "invalid int value"),
    (["--depth-hz", "0.1"], "apply to ramp-down and ramp-up only"),
])
def test_bad_options_exit_2_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              options: list[str], message: str) -> None:
    out = tmp_path / "x.csv"
    assert main(["gb-normal", *options, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_ramp_that_does_not_fit_exits_2(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    assert main(["ramp-down", "--ramp-s", "30", "--out", str(tmp_path / "r.csv")]) == 2
    assert "ramp_s: two ramps of 30.0 s do not fit in 60 s" in capsys.readouterr().err


def test_missing_name_or_out_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gb-normal"]) == 2
    assert main(["--out", "x.csv"]) == 2
    assert capsys.readouterr().err.count("give a trace NAME and --out") == 2


def test_unwritable_output_exits_1_without_leaving_a_partial_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "missing-dir" / "x.csv"
    assert main(["flat", "--out", str(out)]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    out.write_text("old content that is longer than nothing\n" * 1000)
    assert main(["flat", "--seconds", "2", "--rate-hz", "1", "--out", str(out)]) == 0
    assert out.read_text() == "t_s,f_hz\n0.0,50.0\n1.0,50.0\n2.0,50.0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_help_exits_0_and_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--seconds", "--seed", "--rate-hz", "--out", "--list"):
        assert option in out


def test_add_subparser_registers_trace_on_a_parent_cli(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="v2ghub")
    add_subparser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "s.csv"
    args = parser.parse_args(["trace", "step-fcr-h-sat", "--seconds", "30", "--out", str(out)])
    assert args.func(args) == 0
    assert load_trace(out).f_at(15.0) == 50.2
