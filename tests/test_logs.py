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
