"""SystemdNotifier against a real AF_UNIX datagram socket; watchdog_period_s parsing."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.adapters.systemd import SystemdNotifier, watchdog_period_s


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5.0)
    with sock:
        yield sock, str(path)


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_watchdog_status_and_stopping_reach_the_notify_socket(
        notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready(status="serving 3 stations")
    assert received(sock) == ["READY=1", "STATUS=serving 3 stations"]
    assert notifier.watchdog()
    assert received(sock) == ["WATCHDOG=1"]
    assert notifier.status("meter stale\nfalling back")
    assert received(sock) == ["STATUS=meter stale falling back"]
    assert notifier.stopping()
    assert received(sock) == ["STOPPING=1"]
    notifier.close()


def test_abstract_namespace_socket_is_addressed_with_a_nul_byte() -> None:
    name = f"v2ghub-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5.0)
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert received(sock) == ["READY=1"]
        notifier.close()


def test_environment_is_read_from_os_environ_by_default(
        notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert SystemdNotifier().watchdog()
    assert received(sock) == ["WATCHDOG=1"]


def test_without_notify_socket_every_call_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert not notifier.enabled
    assert [notifier.ready("x"), notifier.watchdog(), notifier.status("x"),
            notifier.stopping()] == [False] * 4


def test_unsupported_socket_kind_disables_notification() -> None:
    assert not SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


def test_send_failure_is_logged_once_and_never_raises(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level(logging.WARNING, logger="controller.adapters.systemd"):
        results = [notifier.watchdog() for _ in range(5)]
    assert results == [False] * 5
    assert len(caplog.records) == 1


@pytest.mark.parametrize(("env", "period_s"), [
    ({"WATCHDOG_USEC": "5000000"}, 2.5),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "4242"}, 2.5),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "-5"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "me"}, None),
    ({}, None),
])
def test_watchdog_period_is_half_the_interval_for_this_process(
        env: dict[str, str], period_s: float | None) -> None:
    assert watchdog_period_s(env, pid=4242) == period_s


def test_watchdog_period_defaults_to_environment_and_own_pid(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_period_s() == 0.5
