"""Logging set-up: console plus a size-rotated file, written in batches by a background thread.

The delivery path logs one INFO line per published event (never per
recipient) with channels masked; payloads appear only at DEBUG. The stock
handlers flush (and the rotating one seeks) on every record, about 40 µs a
line, close to the cost of a whole trigger. Here the event loop only queues
the record; a writer thread formats whatever has queued up and writes it with
one write and one flush per sink. aiohttp's access log would print every
trigger URL, codes included, so it is only enabled at DEBUG.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Protocol

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOGFILE_BYTES = 5 * 1024 * 1024
LOGFILE_BACKUPS = 5
BATCH_LIMIT = 1000
# After the first record of a batch the writer waits this long for more, so under
# load it wakes (and takes the GIL from the event loop) ~20 times a second, not
# once per record. Lines reach the file at most this much later.
BATCH_SECONDS = 0.05


class Sink(Protocol):
    def write(self, text: str) -> None: ...
    def close(self) -> None: ...


class ConsoleSink:
    def write(self, text: str) -> None:
        stream = sys.stderr
        if stream is not None:  # pythonw on Windows has no console
            stream.write(text)
            stream.flush()

    def close(self) -> None:
        pass


class RotatingFileSink:
    """Appends to ``path``; past ``max_bytes`` it becomes ``path.1`` (older ones shift up)."""

    def __init__(self, path: Path, max_bytes: int = LOGFILE_BYTES,
                 backups: int = LOGFILE_BACKUPS) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.file = open(path, "a", encoding="utf-8")
        self.size = path.stat().st_size

    def write(self, text: str) -> None:
        data_size = len(text.encode("utf-8"))
        if self.size and self.size + data_size > self.max_bytes:
            self.rotate()
        self.file.write(text)
        self.file.flush()
        self.size += data_size

    def rotate(self) -> None:
        self.file.close()  # Windows cannot rename an open file
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.backups:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self.file = open(self.path, "a", encoding="utf-8")
        self.size = 0

    def close(self) -> None:
        self.file.close()


class EnqueueHandler(logging.Handler):
    """The only handler on the event loop's side: resolve the message, queue the record."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord | None]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg = record.getMessage()  # arguments may change after this call returns
            record.args = None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            self.records.put_nowait(record)
        except Exception:
            self.handleError(record)


class LogWriter(threading.Thread):
    """Formats queued records and writes them to every sink, a batch at a time."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord | None],
                 sinks: list[Sink]) -> None:
        super().__init__(name="log-writer", daemon=True)
        self.records = records
        self.sinks = sinks
        self.formatter = logging.Formatter(FORMAT)

    def run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self.records.get()]
            if batch[0] is not None:
                time.sleep(BATCH_SECONDS)
            while len(batch) < BATCH_LIMIT:
                try:
                    batch.append(self.records.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                stopping = True
            text = "".join(self.formatter.format(record) + "\n"
                           for record in batch if record is not None)
            if text:
                for sink in self.sinks:
                    sink.write(text)
        for sink in self.sinks:
            sink.close()

    def stop(self) -> None:
        """Write what is queued, then end the thread (idempotent)."""
        if self.is_alive():
            self.records.put(None)
            self.join()


def configure_logging(level: str, logfile: Path | None) -> LogWriter:
    """Send every record to the console and ``logfile`` through one writer thread."""
    sinks: list[Sink] = [ConsoleSink()]
    if logfile is not None:
        sinks.append(RotatingFileSink(logfile))
    # The format shows none of these; the logging HOWTO's "Optimization" section
    # names these switches to skip computing them for every record.
    logging._srcfile = None  # no caller lookup (file, line, function)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    records: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
    writer = LogWriter(records, sinks)
    writer.start()
    atexit.register(writer.stop)
    logging.basicConfig(level=level, handlers=[EnqueueHandler(records)], force=True)
    access_level = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("aiohttp.access").setLevel(access_level)
    return writer
