"""sd_notify without libsystemd: READY / WATCHDOG / STOPPING / STATUS datagrams to $NOTIFY_SOCKET.

Implements the datagram protocol of sd_notify(3): newline-separated KEY=VALUE assignments sent on
an AF_UNIX SOCK_DGRAM socket whose path is in $NOTIFY_SOCKET (a leading '@' means the Linux
abstract namespace). Without $NOTIFY_SOCKET (not started by systemd, tests, the demo) every call is
a no-op. `watchdog_period_s()` turns $WATCHDOG_USEC into the ping period (half the interval, as
sd_watchdog_enabled(3) recommends).

Must not: decide when to ping (the control loop pings after each healthy tick, so a stuck loop is
restarted by systemd), raise on a failed send, or block (the socket is non-blocking).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _socket_address(raw: str | None) -> str | bytes | None:
    """$NOTIFY_SOCKET -> an AF_UNIX address; None if unset or of a kind we do not speak."""
    if not raw:
        return None
    if raw.startswith("@"):  # abstract namespace: leading NUL byte instead of '@'
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    log.warning("systemd: unsupported NOTIFY_SOCKET %r (only AF_UNIX paths); not notifying", raw)
    return None


class SystemdNotifier:
    """Sends service state to systemd; every method is a no-op outside a Type=notify unit."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        """Read $NOTIFY_SOCKET from `env` (os.environ if None); open the socket lazily."""
        source = os.environ if env is None else env
        self._address = _socket_address(source.get("NOTIFY_SOCKET"))
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notification socket."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send one datagram of KEY=VALUE lines; True if it was sent. Never raises."""
        if self._address is None or not assignments:
            return False
        data = "\n".join(assignments).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(data, self._address)
        except OSError as exc:
            if not self._warned:  # once: a watchdog ping every few seconds must not flood logs
                self._warned = True
                log.warning("systemd: sd_notify to %r failed: %s", self._address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup finished (Type=notify): listeners bound, control loop running."""
        return self.notify("READY=1", *_status(status))

    def watchdog(self) -> bool:
        """Keep-alive ping; send at least every watchdog_period_s()."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun."""
        return self.notify("STOPPING=1", *_status(status))

    def status(self, text: str) -> bool:
        """Free-form one-line status shown by `systemctl status`."""
        return self.notify(*_status(text))

    def close(self) -> None:
        """Release the socket (further calls reopen it)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _status(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return ("STATUS=" + " ".join(text.splitlines()),)  # one line: a newline would end the value


def watchdog_period_s(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """How often to send WATCHDOG=1, or None when systemd's watchdog is not enabled for us.

    Args:
        env: environment to read (os.environ if None).
        pid: our process id (os.getpid() if None); $WATCHDOG_PID, if set, must match it.

    Returns:
        Half of $WATCHDOG_USEC in seconds (sd_watchdog_enabled(3)), or None.
    """
    source = os.environ if env is None else env
    try:
        usec = int(source.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    wd_pid = source.get("WATCHDOG_PID")
    if wd_pid:
        try:
            if int(wd_pid) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 2e6
