"""The log writer: every line arrives, in order, and the file rotates by size."""

from __future__ import annotations

import logging

from notification_service.logs import RotatingFileSink, configure_logging


def test_lines_arrive_in_order_and_exceptions_keep_their_traceback(tmp_path):
    logfile = tmp_path / "log" / "server.log"
    writer = configure_logging("INFO", logfile)
    log = logging.getLogger("notification_service.test")
    try:
        for n in range(500):
            log.info("line %d", n)
        log.debug("hidden at INFO")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        writer.stop()
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    text = logfile.read_text()
    numbers = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if ": line " in line]
    assert numbers == list(range(500))
    assert "hidden at INFO" not in text
    assert "ValueError: boom" in text and "Traceback" in text


def test_file_rotates_by_size_and_keeps_the_backups(tmp_path):
    path = tmp_path / "server.log"
    sink = RotatingFileSink(path, max_bytes=100, backups=2)
    for n in range(10):
        sink.write(f"{n:02d}" + "x" * 38 + "\n")  # 41 bytes a line
    sink.close()
    assert path.stat().st_size <= 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.log", "server.log.1", "server.log.2"]
    assert path.read_text().startswith("08")


# -- the writer survives (row 12): before, its first write error ended it and every
# -- record after piled up in an unbounded queue (10,000 stuck in a test) -----------

import errno  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import threading  # noqa: E402

import pytest  # noqa: E402

from notification_service import logs  # noqa: E402
from notification_service.logs import (EnqueueHandler, LogWriter, Throttle,  # noqa: E402
                                       formatter_for)


class FlakySink:
    """Fails with ``error`` until ``healthy`` is set; records what it was given."""

    name = "the flaky sink"

    def __init__(self, error: OSError) -> None:
        self.error = error
        self.healthy = threading.Event()
        self.written: list[str] = []
        self.attempts = 0

    def write(self, text: str) -> None:
        self.attempts += 1
        if not self.healthy.is_set():
            raise self.error
        self.written.append(text)

    def close(self) -> None:
        pass


def start_writer(sinks, limit=logs.QUEUE_LIMIT):
    records: queue.SimpleQueue = queue.SimpleQueue()
    handler = EnqueueHandler(records, limit)
    reports: list[str] = []
    writer = LogWriter(records, sinks, formatter_for("text"), report=reports.append,
                       enqueue=handler)
    writer.start()
    log = logging.getLogger(f"test.writer.{id(writer)}")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return writer, log, reports, handler


def log_through_a_failure(flaky: "FlakySink", log, lines: int, failed_attempts: int) -> str:
    """Log ``lines`` while ``flaky`` fails, let it heal, log "after"; what it finally got."""
    for n in range(lines):
        log.info("line %03d %s", n, "x" * 40)
    wait_until(lambda: flaky.attempts >= failed_attempts)
    flaky.healthy.set()
    log.info("after")
    wait_until(lambda: "after" in "".join(flaky.written))
    return "".join(flaky.written)


def wait_until(condition, timeout=5.0):
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   PermissionError(errno.EACCES, "locked by another program")])
def test_a_failing_sink_is_reported_once_and_retried_and_others_keep_writing(monkeypatch, error):
    monkeypatch.setattr(logs, "RETRY_SECONDS", 0.05)
    flaky = FlakySink(error)
    console = FlakySink(OSError())
    console.healthy.set()
    writer, log, reports, _handler = start_writer([flaky, console])
    try:
        text = log_through_a_failure(flaky, log, 50, failed_attempts=3)  # retried while failing
    finally:
        writer.stop()
    assert "cannot write the log to the flaky sink" in reports[0]
    assert "line 049" in "".join(console.written)  # the console never waited for it
    assert [int(line.split(" line ")[1].split()[0]) for line in text.splitlines()
            if " line " in line] == list(range(50))  # nothing lost, nothing twice, in order
    assert reports[-1] == "the log is written to the flaky sink again" and len(reports) == 2


def test_a_full_disk_keeps_the_newest_lines_and_counts_the_rest(monkeypatch):
    monkeypatch.setattr(logs, "RETRY_SECONDS", 0.05)
    monkeypatch.setattr(logs, "RETRY_BYTES", 2000)
    flaky = FlakySink(OSError(errno.ENOSPC, "No space left on device"))
    writer, log, reports, _handler = start_writer([flaky])
    try:
        text = log_through_a_failure(flaky, log, 500, failed_attempts=2)
    finally:
        writer.stop()
    assert "line 499" in text and "line 000" not in text
    lost = int(text.split(" log lines were lost while")[0].rsplit(" ", 1)[1])
    kept = text.count(" line ")
    assert lost + kept == 500 and len(text) < 4000


def test_the_real_dev_full_never_stops_the_writer(monkeypatch):
    monkeypatch.setattr(logs, "RETRY_SECONDS", 0.05)
    console = FlakySink(OSError())
    console.healthy.set()
    sink = logs.RotatingFileSink(logs.Path("/dev/full"))
    writer, log, reports, _handler = start_writer([sink, console])
    try:
        for n in range(100):
            log.info("line %d", n)
        wait_until(lambda: "line 99" in "".join(console.written))
        assert writer.is_alive()
    finally:
        writer.stop()
    assert len(reports) == 1 and "/dev/full" in reports[0] and "No space left" in reports[0]


def test_the_queue_is_bounded_and_counts_what_it_dropped():
    stuck = FlakySink(OSError())
    started = threading.Event()
    original = stuck.write

    def blocking(text: str) -> None:
        started.set()
        stuck.healthy.wait()
        original(text)

    stuck.write = blocking
    writer, log, _reports, handler = start_writer([stuck], limit=100)
    try:
        log.info("first")
        started.wait(5)
        for n in range(10_000):
            log.info("line %d", n)
        assert handler.records.qsize() <= 100 and handler.dropped >= 9_890
        stuck.healthy.set()
        wait_until(lambda: handler.records.qsize() == 0)
        log.info("after")
    finally:
        writer.stop()
    text = "".join(stuck.written)
    assert f"{handler.dropped} log lines were dropped" in text and "after" in text


def test_rotation_survives_a_file_another_program_holds_open(tmp_path, monkeypatch):
    """Windows: renaming a log file that a viewer holds open raises PermissionError."""
    path = tmp_path / "server.log"
    real_replace = os.replace

    def locked(source, target):
        if os.fspath(source) == os.fspath(path):
            raise PermissionError(errno.EACCES, "The process cannot access the file because it "
                                  "is being used by another process", str(source))
        real_replace(source, target)

    monkeypatch.setattr(logs.os, "replace", locked)
    sink = logs.RotatingFileSink(path, max_bytes=200, backups=2)
    lines = [f"{n:02d}" + "x" * 37 + "\n" for n in range(20)]  # 40 bytes a line
    for line in lines:
        sink.write(line)
    sink.close()
    assert path.stat().st_size <= 200
    kept = (tmp_path / "server.log.2").read_text() + (tmp_path / "server.log.1").read_text() \
        + path.read_text()
    assert kept == "".join(lines[-len(kept.splitlines()):])  # in order, the newest kept
    assert len(kept.splitlines()) >= 10


def test_a_rotation_that_fails_completely_is_reported_and_writing_goes_on(tmp_path, monkeypatch):
    path = tmp_path / "server.log"
    notices: list[str] = []

    def refuse(*_args):
        raise PermissionError(errno.EACCES, "locked")

    monkeypatch.setattr(logs.os, "replace", refuse)
    monkeypatch.setattr(logs.shutil, "copyfile", refuse)
    sink = logs.RotatingFileSink(path, max_bytes=200, backups=2, notices=notices.append)
    for n in range(12):
        sink.write(f"{n:02d}" + "x" * 37 + "\n")
    sink.close()
    assert path.read_text().count("\n") == 12  # nothing lost
    assert len(notices) == 1 and "could not rotate" in notices[0]  # not one per line


def test_json_lines_carry_the_event_id_and_the_masked_channel(tmp_path):
    import asyncio

    from notification_service.hub import Hub

    logfile = tmp_path / "server.log"
    writer = configure_logging("INFO", logfile, "json")
    try:
        report = asyncio.run(Hub().publish("1234", "FOLLOW", {"user": "bob"}))
        logging.getLogger("notification_service.test").warning("plain %s", "line")
    finally:
        writer.stop()
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    lines = [json.loads(line) for line in logfile.read_text().splitlines()]
    published = next(line for line in lines if line["message"].startswith("published"))
    assert published["event_id"] == report.event.id and published["channel"] == "12**"
    assert published["level"] == "INFO" and published["logger"] == "notification_service.hub"
    assert published["time"].endswith("Z") and "1234" not in json.dumps(published)
    plain = next(line for line in lines if line["message"] == "plain line")
    assert set(plain) == {"time", "level", "logger", "message"}


def test_throttle_allows_a_few_a_second_and_counts_the_rest():
    now = [0.0]
    throttle = Throttle(per_second=3, clock=lambda: now[0])
    results = [throttle.allow() for _ in range(10)]
    assert [allowed for allowed, _ in results] == [True] * 3 + [False] * 7
    now[0] += 1.0
    assert throttle.allow() == (True, 7)


def test_the_per_event_line_looks_like_any_other_line_in_order(tmp_path):
    """info_line skips the LogRecord (the per-event cost), never the format or the order."""
    import re

    from notification_service.logs import info_line

    for log_format in ("text", "json"):
        logfile = tmp_path / f"{log_format}.log"
        writer = configure_logging("INFO", logfile, log_format)
        log = logging.getLogger("notification_service.hub")
        try:
            log.info("published A to 12** id=1 listeners=0", extra={"event_id": "1",
                                                                   "channel": "12**"})
            info_line(log, "published B to 12** id=2 listeners=0", event_id="2", channel="12**")
            log.warning("after")
        finally:
            writer.stop()
            logging.basicConfig(force=True, handlers=[logging.NullHandler()])
        first, second, third = logfile.read_text().splitlines()
        if log_format == "json":
            first, second = json.loads(first), json.loads(second)
            assert set(first) == set(second)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", second["time"])
            assert (second["event_id"], second["channel"]) == ("2", "12**")
            assert second["message"] == "published B to 12** id=2 listeners=0"
        else:
            assert first[:10] == second[:10] and len(first) == len(second)
            assert second[23:] == " INFO notification_service.hub: published B to 12** id=2 " \
                                  "listeners=0"
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", second[:23])
        assert "after" in third
