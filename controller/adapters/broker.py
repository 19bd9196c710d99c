"""Start a private mosquitto broker on a free loopback port (demo, tests, benchmarks).

An adapter: it spawns the real Debian mosquitto binary with a generated config and decides
nothing about telemetry. Running as root, mosquitto drops privileges to the `mosquitto` user
after reading its config and binding the listener (PITFALLS.md): it therefore gets no file to
write after that (persistence off, log to stderr, which is a file *we* opened and it inherits).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = "install it (apt-get install mosquitto) or run scripts/bootstrap"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to 0, read it back, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str | None:
    """Path of the mosquitto broker binary (Debian puts it in /usr/sbin, often off PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


class Mosquitto:
    """One private mosquitto process; stop() and start() keep the same host and port."""

    def __init__(self, workdir: Path, *, port: int | None = None, host: str = "127.0.0.1",
                 binary: str | None = None) -> None:
        binary = binary or mosquitto_binary()
        if binary is None:
            raise FileNotFoundError(f"mosquitto broker not found; {INSTALL_HINT}")
        self.binary = binary
        self.host = host
        self.port = port or free_port(host)
        self.conf_path = workdir / f"mosquitto-{self.port}.conf"
        self.log_path = workdir / f"mosquitto-{self.port}.log"
        self.conf_path.write_text(
            f"listener {self.port} {host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"  # an inherited fd: writable after the drop to user mosquitto
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "log_timestamp_format %H:%M:%S\n"
        )
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the broker and wait until its port accepts connections."""
        if self.running:
            return
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own config
                [self.binary, "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode} on port "
                                   f"{self.port}:\n{self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise TimeoutError(f"mosquitto not listening on {self.port} after "
                                       f"{timeout_s} s:\n{self.log_text()}") from None
                time.sleep(0.02)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Graceful stop (SIGTERM: clients see their connection closed), kill if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL, no goodbye."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

