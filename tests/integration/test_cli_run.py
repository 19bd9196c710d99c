"""`v2ghub run` as systemd runs it: a real process, sd_notify READY and watchdog pings, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
V2GHUB = [sys.executable, "-m", "controller"]

CONFIG = """
[site]
id = "cli"
[ocpp]
port = 0
[[ocpp.station]]
id = "CP001"
password = "0123456789abcdef"
discharge = "negative_limit"
[meter]
port = 0
[mqtt]
enabled = false
[[service]]
name = "DC-L"
contract_kw = 10
"""


def test_bad_config_exits_2_with_one_line_naming_the_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(CONFIG.replace("[meter]", "[meter]\nrate = 3"))
    proc = subprocess.run([*V2GHUB, "run", "--config", str(cfg)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unknown key 'meter.rate'" in lines[0]


def test_help_texts_name_the_commands():
    out = subprocess.run([*V2GHUB, "--help"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    for command in ("run", "sim", "demo"):
        assert command in out
    run_help = subprocess.run([*V2GHUB, "run", "--help"], capture_output=True, text=True,
                              timeout=60, check=True).stdout
    assert "--config" in run_help


def test_daemon_notifies_ready_pings_the_watchdog_and_stops_on_sigterm(tmp_path):
    cfg = tmp_path / "v2ghub.toml"
    cfg.write_text(CONFIG)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "200000"}
    proc = subprocess.Popen([*V2GHUB, "run", "--config", str(cfg)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # WATCHDOG_PID is not set, so any pid may ping (systemd sets it; we test the parsing
    # of it in the unit tests)
    try:
        messages: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            messages.append(sock.recv(4096).decode())
            if sum("WATCHDOG=1" in m for m in messages) >= 3:
                break
        assert any("READY=1" in m for m in messages)
        ready_index = next(i for i, m in enumerate(messages) if "READY=1" in m)
        assert sum("WATCHDOG=1" in m for m in messages[ready_index:]) >= 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        tail = []
        sock.settimeout(2)
        try:
            while True:
                tail.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
        assert any("STOPPING=1" in m for m in tail)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
