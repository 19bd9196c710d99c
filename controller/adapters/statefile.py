"""Persists which stations this CSMS has accepted, so a daemon restart does not orphan the fleet.

Stations boot (BootNotification) only after their own reboot, never because the CSMS restarted;
without this file a restarted daemon would answer every message of a reconnecting station with
SecurityError. The file is small JSON::

    {"format": 1, "accepted_stations": ["CP001", "CP002"], "saved_at": 1795752000.0}

It is read once at start (missing -> empty set; unreadable or corrupt -> a clear warning and an
empty set, never a crash) and rewritten atomically (temporary file in the same directory, fsync,
rename, fsync of the directory) only when the set changes. Writes run in a worker thread driven
by `AcceptedStationsFile.run()`, so neither the control tick nor a station's connection task
waits for the disk. This adapter makes no protocol decision: what "accepted" means is the OCPP
session's business (controller.ocpp.session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

FORMAT = 1
KEY = "accepted_stations"
# A station id is an OCPP identifierString of at most 48 characters (A00.FR.005, settings.py);
# anything else in the file means it is not ours or is damaged.
MAX_ID_LEN = 48
# Far above any site this daemon serves (1000 stations, PITFALLS.md); bounds what a damaged or
# foreign file can make us hold in memory.
MAX_FILE_BYTES = 16 * 1024 * 1024


def load_accepted(path: str | Path) -> frozenset[str]:
    """Read the accepted station ids; never raises.

    A missing file is an empty set (first start). An unreadable or corrupt file logs one
    WARNING naming the file and the problem, and is an empty set: affected stations simply
    have to boot again, as they would without the file.
    """
    p = Path(path)
    try:
        return _parse(orjson.loads(_read_bounded(p)))
    except FileNotFoundError:
        log.info("station state file %s does not exist yet: no station accepted before", p)
    except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        log.warning("station state file %s is unusable (%s): starting with no accepted "
                    "stations; they are accepted again when they next boot", p, exc)
    return frozenset()


def _read_bounded(p: Path) -> bytes:
    with p.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    return data


def _parse(doc: Any) -> frozenset[str]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"not a format {FORMAT} object")
    ids = doc.get(KEY)
    if not isinstance(ids, list) or not all(
            isinstance(i, str) and 0 < len(i) <= MAX_ID_LEN for i in ids):
        raise ValueError(f"{KEY!r} is not a list of station ids")
    return frozenset(ids)


def save_accepted(path: str | Path, station_ids: Iterable[str], *, wall_s: float) -> None:
    """Write the set atomically: readers see the old file or the new one, never a torn one.

    Raises:
        OSError: the directory cannot be created or written.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps({"format": FORMAT, KEY: sorted(station_ids), "saved_at": wall_s},
                        option=orjson.OPT_INDENT_2)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(p.parent)  # ... and the rename itself survives a power cut


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported here (some platforms/filesystems): the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AcceptedStationsFile:
    """The state file plus a writer task that coalesces save requests (latest set wins)."""

    def __init__(self, path: str | Path, *, wall: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._wall = wall
        self._latest: frozenset[str] | None = None  # requested, not yet written
        self._wake = asyncio.Event()
        self.saves = 0
        self.failures = 0

    def load(self) -> frozenset[str]:
        """The accepted set on disk (see load_accepted); call once at start."""
        return load_accepted(self.path)

    def request_save(self, station_ids: frozenset[str]) -> None:
        """Ask for `station_ids` to be written; returns at once. Event-loop thread only."""
        self._latest = station_ids
        self._wake.set()

    async def run(self) -> None:
        """Write requested sets in a worker thread until cancelled; a last one is flushed."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                ids, self._latest = self._latest, None
                if ids is not None:
                    await asyncio.to_thread(self._write, ids)
        except asyncio.CancelledError:
            if self._latest is not None:  # shutting down: one small synchronous write
                ids, self._latest = self._latest, None
                self._write(ids)
            raise

    def _write(self, ids: frozenset[str]) -> None:
        try:
            save_accepted(self.path, ids, wall_s=self._wall())
        except OSError:
            log.warning("could not write station state file %s; accepted stations will have "
                        "to boot again after a restart", self.path, exc_info=True)
            self.failures += 1  # after the log: a reader that sees the count sees the warning
            return
        self.saves += 1
        log.info("station state file %s: %d accepted station(s)", self.path, len(ids))
