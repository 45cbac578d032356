"""Logging set-up: console plus a size-rotated file, written in batches by a background thread.

The delivery path logs one INFO line per published event (never per
recipient) with channels masked; payloads appear only at DEBUG. The stock
handlers flush (and the rotating one seeks) on every record, about 40 µs a
line, close to the cost of a whole trigger. Here the event loop only queues
the record; a writer thread formats whatever has queued up and writes it with
one write and one flush per sink. The per-event line skips even the record:
:func:`info_line` queues the finished text (about 1 µs instead of 6 for a
LogRecord, its formatting and its timestamp), so INFO costs a trigger a few
percent. aiohttp's access log would print every trigger URL, codes included,
so it is only enabled at DEBUG.

Logging never stops and never grows without bound: the queue holds at most
:data:`QUEUE_LIMIT` records and counts what it had to drop; a sink that fails
to write (disk full, a file locked by another program) is reported once on
stderr, keeps up to :data:`RETRY_BYTES` of lines and retries; a rotation whose
rename fails (Windows, while another program holds the file) copies and
truncates instead. :class:`Throttle` keeps a flood of similar lines (malformed
requests) to a few a second. Text lines by default; ``--log-format json``
writes one JSON object per line.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import shutil
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

import orjson

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
LOGFILE_BYTES = 5 * 1024 * 1024
LOGFILE_BACKUPS = 5
BATCH_LIMIT = 4000
# After the first record of a batch the writer waits this long for more, so under
# load it wakes (and takes the GIL from the event loop) 5 times a second, not once
# per record. Lines reach the file at most this much later. Measured at INFO, about
# 10,000 triggers a second (bench/trigger.py variants, the same interleaved rounds):
# 0.05 s cost 2-4 % more CPU than a writer that never woke, 0.2 s about 1 %.
BATCH_SECONDS = 0.2
QUEUE_LIMIT = 10_000
"""Records waiting for the writer at most; more are dropped and counted."""
RETRY_BYTES = 1024 * 1024
"""Text a failing sink keeps for its next attempt; older lines are dropped first."""
RETRY_SECONDS = 1.0
"""How often a failing sink is tried again, even when nothing new is logged."""
JSON_FIELDS = ("event_id", "channel")
"""Record attributes (``extra=``) a JSON line carries when present."""


class Sink(Protocol):
    name: str

    def write(self, text: str) -> None: ...
    def close(self) -> None: ...


class ConsoleSink:
    name = "the console"

    def write(self, text: str) -> None:
        stream = sys.stderr
        if stream is not None:  # pythonw on Windows has no console
            stream.write(text)
            stream.flush()

    def close(self) -> None:
        pass


class RotatingFileSink:
    """Appends to ``path``; past ``max_bytes`` it becomes ``path.1`` (older ones shift up).

    When the rename fails (on Windows another program holding the file open
    forbids it), the file is copied to ``path.1`` and truncated instead; when
    that fails too, writing goes on in the same file and rotation is tried
    again after another tenth of ``max_bytes``. ``notices`` receives one
    sentence per problem (the writer prints it on stderr).
    """

    def __init__(self, path: Path, max_bytes: int = LOGFILE_BYTES,
                 backups: int = LOGFILE_BACKUPS,
                 notices: Callable[[str], None] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.name = str(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.notices = notices or (lambda _sentence: None)
        self.file = open(path, "a", encoding="utf-8")
        self.size = path.stat().st_size
        self.next_rotation = max_bytes
        self.rotation_failing = False

    def write(self, text: str) -> None:
        data_size = len(text.encode("utf-8"))
        if self.size and self.size + data_size > self.next_rotation:
            self.rotate()
        if self.file.closed:
            self.file = open(self.path, "a", encoding="utf-8")
        try:
            self.file.write(text)
            self.file.flush()
        except OSError:
            # Close to drop what the buffer still holds: the writer retries the whole
            # text, which must not be written twice once the disk has room again.
            try:
                self.file.close()
            except OSError:
                pass
            raise
        self.size += data_size

    def _backup(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")

    def rotate(self) -> None:
        self.file.close()  # Windows cannot rename an open file
        try:
            for index in range(self.backups - 1, 0, -1):
                if self._backup(index).exists():
                    os.replace(self._backup(index), self._backup(index + 1))
            if self.backups:
                try:
                    os.replace(self.path, self._backup(1))
                except PermissionError:  # held open elsewhere: copy, then empty it in place
                    shutil.copyfile(self.path, self._backup(1))
                    with open(self.path, "r+", encoding="utf-8") as held:
                        held.truncate(0)
            else:
                with open(self.path, "w", encoding="utf-8"):
                    pass
        except OSError as error:
            if not self.rotation_failing:
                self.notices(f"could not rotate the log file {self.path} ({error}); writing "
                             f"on in the same file and trying again later")
            self.rotation_failing = True
            self.file = open(self.path, "a", encoding="utf-8")
            self.next_rotation = self.size + max(1, self.max_bytes // 10)
            return
        if self.rotation_failing:
            self.notices(f"the log file {self.path} rotates again")
        self.rotation_failing = False
        self.file = open(self.path, "a", encoding="utf-8")
        self.size = 0
        self.next_rotation = self.max_bytes

    def close(self) -> None:
        self.file.close()


class _Failing:
    """What a sink that failed still has to write, and how much it lost."""

    __slots__ = ("text", "lost_lines", "since", "next_try")

    def __init__(self, now: float) -> None:
        self.text = ""
        self.lost_lines = 0
        self.since = now
        self.next_try = now + RETRY_SECONDS

    def keep(self, text: str) -> None:
        text = self.text + text
        if len(text) > RETRY_BYTES:
            cut = text.find("\n", len(text) - RETRY_BYTES)
            cut = len(text) - RETRY_BYTES if cut < 0 else cut + 1
            self.lost_lines += text.count("\n", 0, cut)
            text = text[cut:]
        self.text = text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and event id/channel if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JSON_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT)


Queued = "logging.LogRecord | str | None"
"""What the writer's queue holds: a record, a finished line (:func:`info_line`), or the stop mark."""


class EnqueueHandler(logging.Handler):
    """The only handler on the event loop's side: resolve the message, queue the record.

    The queue is bounded: past :data:`QUEUE_LIMIT` waiting records a record is
    dropped and counted in ``dropped`` (the writer reports the count).
    """

    def __init__(self, records: "queue.SimpleQueue[Queued]", limit: int = QUEUE_LIMIT,
                 log_format: str = "text") -> None:
        super().__init__()
        self.records = records
        self.limit = limit
        self.dropped = 0
        self.json = log_format == "json"
        self._second = -1
        self._stamp = ""
        self._millisecond = -1
        self._time = ""  # the time part of lines in self._millisecond (see _time_text)

    def line(self, name: str, message: str, fields: dict[str, str]) -> None:
        """Queue one finished INFO line, formatted as the writer's formatter would (text or JSON)."""
        records = self.records
        if records.qsize() >= self.limit:
            self.dropped += 1
            return
        millisecond = int(time.time() * 1000)
        if millisecond != self._millisecond:  # several lines share a millisecond under load
            self._millisecond = millisecond
            self._time = self._time_text(millisecond)
        if self.json:
            records.put_nowait(orjson.dumps(
                {"time": self._time, "level": "INFO", "logger": name, "message": message,
                 **fields}).decode())
        else:
            records.put_nowait(f"{self._time} INFO {name}: {message}")

    def _time_text(self, millisecond: int) -> str:
        """The time part of a line: ``2026-12-01 20:41:07,123`` (JSON: ``...T20:41:07.123Z``)."""
        second, millis = divmod(millisecond, 1000)
        if second != self._second:  # the date part changes once a second
            self._second = second
            self._stamp = (datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
                           if self.json else time.strftime("%Y-%m-%d %H:%M:%S",
                                                           time.localtime(second)))
        return f"{self._stamp}.{millis:03d}Z" if self.json else f"{self._stamp},{millis:03d}"

    def emit(self, record: logging.LogRecord) -> None:
        if self.records.qsize() >= self.limit:
            self.dropped += 1
            return
        try:
            record.msg = record.getMessage()  # arguments may change after this call returns
        except Exception as error:  # a bad format string must not cost the line
            record.msg = f"{record.msg!r} (could not be formatted: {error!r})"
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.records.put_nowait(record)


class LogWriter(threading.Thread):
    """Formats queued records and writes them to every sink, a batch at a time.

    It never dies of a write error: a failing sink is reported once on
    ``report`` (stderr), its lines are kept (at most :data:`RETRY_BYTES`) and
    retried every :data:`RETRY_SECONDS`; when it works again a line says how
    many lines were lost.
    """

    def __init__(self, records: "queue.SimpleQueue[Queued]",
                 sinks: list[Sink], formatter: logging.Formatter | None = None,
                 report: Callable[[str], None] | None = None,
                 enqueue: EnqueueHandler | None = None) -> None:
        super().__init__(name="log-writer", daemon=True)
        self.records = records
        self.sinks = sinks
        self.formatter = formatter or logging.Formatter(FORMAT)
        self.report = report or _to_stderr
        self.enqueue = enqueue
        self.failing: dict[int, _Failing] = {}
        self._reported_drops = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        stopping = False
        while not stopping:
            batch = self._next_batch()
            if None in batch:
                stopping = True
            try:
                text = self._format(batch)
                for index, sink in enumerate(self.sinks):
                    self._write(index, sink, text)
            except Exception as error:  # nothing may end the writer
                self.report(f"log writer: {error!r}")
        for sink in self.sinks:
            try:
                sink.close()
            except OSError:
                pass

    def _next_batch(self) -> "list[Queued]":
        timeout = RETRY_SECONDS if self.failing else None
        try:
            batch = [self.records.get(timeout=timeout)]
        except queue.Empty:
            return []
        if batch[0] is not None and self.records.qsize() < BATCH_LIMIT:
            self._stopping.wait(BATCH_SECONDS)  # a backlog is written at once, a stop too
        while len(batch) < BATCH_LIMIT:
            try:
                batch.append(self.records.get_nowait())
            except queue.Empty:
                break
        return batch

    def _format(self, batch: "list[Queued]") -> str:
        lines = []
        for record in batch:
            if record is None:
                continue
            if isinstance(record, str):
                lines.append(record + "\n")
                continue
            try:
                lines.append(self.formatter.format(record) + "\n")
            except Exception as error:
                lines.append(f"(a log line could not be formatted: {error!r})\n")
        dropped = self.enqueue.dropped if self.enqueue is not None else 0
        if dropped > self._reported_drops:
            lines.append(self._notice(
                f"{dropped - self._reported_drops} log lines were dropped: more than "
                f"{self.enqueue.limit} were waiting to be written") + "\n")
            self._reported_drops = dropped
        return "".join(lines)

    def _notice(self, message: str) -> str:
        record = logging.LogRecord("notification_service.logs", logging.WARNING, "", 0,
                                   message, None, None)
        return self.formatter.format(record)

    def _write(self, index: int, sink: Sink, text: str) -> None:
        failing = self.failing.get(index)
        if failing is not None:
            failing.keep(text)
            if time.monotonic() < failing.next_try:
                return
            text = failing.text
            if failing.lost_lines:
                text = self._notice(f"{failing.lost_lines} log lines were lost while "
                                    f"{sink.name} could not be written") + "\n" + text
        if not text:
            return
        try:
            sink.write(text)
        except Exception as error:
            if failing is None:
                failing = self.failing[index] = _Failing(time.monotonic())
                failing.keep(text)
                self.report(f"cannot write the log to {sink.name} ({error}); keeping the "
                            f"newest lines in memory and trying again every "
                            f"{RETRY_SECONDS:g} s")
            else:
                failing.next_try = time.monotonic() + RETRY_SECONDS
            return
        if failing is not None:
            del self.failing[index]
            self.report(f"the log is written to {sink.name} again")

    def stop(self) -> None:
        """Write what is queued, then end the thread (idempotent)."""
        if self.is_alive():
            self.records.put(None)
            self._stopping.set()
            self.join()


def _to_stderr(sentence: str) -> None:
    stream = sys.__stderr__
    if stream is not None:
        try:
            stream.write(f"notification_server: {sentence}\n")
            stream.flush()
        except (OSError, ValueError):
            pass


class Throttle:
    """At most ``per_second`` lines a second from one source; the next line counts the rest.

    A flood of malformed requests (16,730 in 5 s in one trial) must not rotate
    every other line out of the log: the first few of each second are written,
    and the next one written says how many were held back.
    """

    def __init__(self, per_second: int = 5, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.clock = clock
        self.window = -1.0
        self.in_window = 0
        self.suppressed = 0

    def allow(self) -> tuple[bool, int]:
        """(write this line?, lines suppressed since the last one written)."""
        now = self.clock()
        if now - self.window >= 1.0:
            self.window, self.in_window = now, 0
        if self.in_window >= self.per_second:
            self.suppressed += 1
            return False, 0
        self.in_window += 1
        suppressed, self.suppressed = self.suppressed, 0
        return True, suppressed

    def log(self, logger: logging.Logger, level: int, message: str, *args: object) -> bool:
        """Log unless over the limit; True if the line was written."""
        allowed, suppressed = self.allow()
        if allowed and logger.isEnabledFor(level):
            if suppressed:
                message += f" ({suppressed} similar lines suppressed)"
            logger.log(level, message, *args)
        return allowed


def configure_logging(level: str, logfile: Path | None, log_format: str = "text") -> LogWriter:
    """Send every record to the console and ``logfile`` through one writer thread.

    Raises :class:`~.errors.StartupError` with a sentence when the log file
    cannot be opened (its folder is a file, read-only, or the disk is full).
    """
    from .errors import StartupError  # errors.py logs through this module: import late
    from .folders import prepare

    sinks: list[Sink] = [ConsoleSink()]
    if logfile is not None:
        prepare(logfile.parent, "log folder", "--logfile")
        try:
            sinks.append(RotatingFileSink(logfile, notices=_to_stderr))
        except OSError as error:
            raise StartupError(f"Cannot write the log file {logfile.resolve()} "
                               f"({error.strerror or error}): choose another with --logfile, "
                               f"or an empty --logfile to log to the console only.") from None
    # The format shows none of these; the logging HOWTO's "Optimization" section
    # names these switches to skip computing them for every record.
    logging._srcfile = None  # no caller lookup (file, line, function)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    records: "queue.SimpleQueue[Queued]" = queue.SimpleQueue()
    handler = EnqueueHandler(records, log_format=log_format)
    writer = LogWriter(records, sinks, formatter_for(log_format), enqueue=handler)
    writer.start()
    atexit.register(writer.stop)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    access_level = logging.DEBUG if level == "DEBUG" else logging.WARNING
    logging.getLogger("aiohttp.access").setLevel(access_level)
    global _LINES
    _LINES = handler
    return writer


_LINES: EnqueueHandler | None = None
"""Where :func:`info_line` queues its lines: the handler :func:`configure_logging` installed."""


def info_line(logger: logging.Logger, message: str, **fields: str) -> None:
    """Log ``message``, already formatted, at INFO on ``logger``: the per-event line.

    Same destination, order and look as ``logger.info(message, extra=fields)``
    (``fields`` are what a JSON line carries, see :data:`JSON_FIELDS`), without
    building a LogRecord. Where :func:`configure_logging` did not run (the
    Python API, tests), or another handler was put in its place, it is that
    call. Callers build ``message`` only after checking
    ``logger.isEnabledFor(logging.INFO)``.
    """
    lines = _LINES
    handlers = logging.root.handlers
    if lines is not None and len(handlers) == 1 and handlers[0] is lines \
            and logger.propagate and not logger.handlers:
        lines.line(logger.name, message, fields)
    else:
        logger.info("%s", message, extra=fields)
