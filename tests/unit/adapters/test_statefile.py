"""The accepted-stations state file: atomic writes, tolerant reads, a coalescing writer task."""

import asyncio
import json
import logging
import os

import pytest

from controller.adapters import statefile
from controller.adapters.statefile import AcceptedStationsFile, load_accepted, save_accepted

WALL_S = 1_795_752_000.0


async def until(cond) -> None:
    async with asyncio.timeout(30):  # liveness bound (fsync on a busy disk), not a speed assertion
        while not cond():  # noqa: ASYNC110 - polls a file written by a worker thread
            await asyncio.sleep(0.01)


def test_saved_set_is_read_back(tmp_path):
    path = tmp_path / "stations.json"
    save_accepted(path, {"CP2", "CP1"}, wall_s=WALL_S)
    assert load_accepted(path) == {"CP1", "CP2"}
    assert json.loads(path.read_text()) == {"format": 1, "accepted_stations": ["CP1", "CP2"],
                                            "saved_at": WALL_S}
    assert os.listdir(tmp_path) == ["stations.json"]  # no temporary file left behind


def test_missing_directory_is_created(tmp_path):
    path = tmp_path / "var" / "lib" / "v2ghub" / "stations.json"
    save_accepted(path, {"CP1"}, wall_s=WALL_S)
    assert load_accepted(path) == {"CP1"}


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "stations.json"
    save_accepted(path, {"CP1"}, wall_s=WALL_S)
    before = path.read_bytes()

    def crash(*_args):
        raise OSError("power cut before the rename")

    monkeypatch.setattr(statefile.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        save_accepted(path, {"CP1", "CP2"}, wall_s=WALL_S + 1)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["stations.json"]


def test_missing_file_is_an_empty_set_without_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert load_accepted(tmp_path / "nope.json") == frozenset()
    assert not caplog.records


@pytest.mark.parametrize(
    "content",
    [
        b"{ not json",
        b"",
        b"\xff\xfe",
        b'["CP1"]',
        b'{"format": 2, "accepted_stations": ["CP1"]}',
        b'{"format": 1}',
        b'{"format": 1, "accepted_stations": [1, 2]}',
        b'{"format": 1, "accepted_stations": [""]}',
        b'{"format": 1, "accepted_stations": "CP1"}',
    ],
)
def test_corrupt_file_is_an_empty_set_with_a_clear_warning(tmp_path, caplog, content):
    path = tmp_path / "stations.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert load_accepted(path) == frozenset()
    assert len(caplog.records) == 1
    assert str(path) in caplog.text
    assert "unusable" in caplog.text


def test_a_directory_in_place_of_the_file_is_an_empty_set_not_a_crash(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert load_accepted(tmp_path) == frozenset()
    assert "unusable" in caplog.text


async def test_writer_task_writes_the_latest_requested_set(tmp_path):
    sf = AcceptedStationsFile(tmp_path / "stations.json", wall=lambda: WALL_S)
    task = asyncio.create_task(sf.run())
    try:
        sf.request_save(frozenset({"CP1"}))
        sf.request_save(frozenset({"CP1", "CP2"}))  # coalesced: the latest set wins
        # the counter moves after the rename, in the worker thread: wait for it, then read
        await until(lambda: sf.saves >= 1 and sf.load() == {"CP1", "CP2"})
        assert sf.failures == 0
        assert 1 <= sf.saves <= 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_request_pending_at_shutdown_is_still_written(tmp_path):
    sf = AcceptedStationsFile(tmp_path / "stations.json", wall=lambda: WALL_S)
    task = asyncio.create_task(sf.run())
    await asyncio.sleep(0)  # the writer waits for a request
    sf.request_save(frozenset({"CP9"}))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sf.load() == {"CP9"}


async def test_an_unwritable_location_is_a_warning_not_a_crash(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sf = AcceptedStationsFile(blocker / "stations.json")  # parent is a regular file
    task = asyncio.create_task(sf.run())
    try:
        with caplog.at_level(logging.WARNING):
            sf.request_save(frozenset({"CP1"}))
            await until(lambda: sf.failures > 0)
        assert "could not write station state file" in caplog.text
        assert not task.done()  # the writer keeps going
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
