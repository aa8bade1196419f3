"""Expected failures read as one line on the console, not as a traceback.

When a task with retries raises, Prefect 3.8 logs, on the task-run logger:

    INFO  | Task run 'send_email-38b' - Task run failed with exception: TransientDeliveryError('…') - Retry 1/2 will start 1 second(s) from now
    ERROR | Task run 'send_email-38b' - Task run failed with exception: TransientDeliveryError('…') - Retries are exhausted
    Traceback (most recent call last):
      File ".../prefect/task_engine.py", line 1027, in run_context
      …
    evaluation.distribution.model.TransientDeliveryError: …
    ERROR | Task run 'send_email-38b' - Finished in state Failed('Task run encountered an exception TransientDeliveryError: …')

(and a flow that raises logs "Encountered exception during execution" with one too). The
traceback is the record's ``exc_info``, rendered by the console handler's formatter. For
the project's expected failures (a server that does not answer, a source that is down, a
condition the user can fix) the message line already says everything, in Chinese, and
the traceback only buries it: ``quiet_expected_failures()`` puts a filter on Prefect's
console handlers that drops ``exc_info``/``exc_text`` from records whose exception is one
of those types (or was caused by one). The message line stays, any other exception keeps
its traceback, and the API handler (which Prefect attaches to the flow- and task-run
loggers, so it sees each record before the root's console handler) still sends the full
record to the server.
"""

from __future__ import annotations

import logging
from pathlib import Path

from evaluation.distribution.model import TransientDeliveryError
from evaluation.errors import UserError
from evaluation.ingest import TransientSourceError

EXPECTED: tuple[type[BaseException], ...] = (TransientDeliveryError, TransientSourceError, UserError)


class QuietExpected(logging.Filter):
    """Drop the traceback of a record whose exception is (or was caused by) an expected type."""

    def __init__(self, expected: tuple[type[BaseException], ...] = EXPECTED):
        super().__init__()
        self.expected = expected

    def is_expected(self, exc: BaseException | None) -> bool:
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            if isinstance(exc, self.expected):
                return True
            exc = exc.__cause__ or exc.__context__
        return False

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        if exc_info and isinstance(exc_info, tuple) and self.is_expected(exc_info[1]):
            record.exc_info = None
            record.exc_text = None
        return True


def _console_handlers() -> list[logging.Handler]:
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    found: list[logging.Handler] = []
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and handler not in found:
                found.append(handler)
    return found


def quiet_expected_failures(*extra: type[BaseException]) -> int:
    """Filter expected failures' tracebacks out of every Prefect console handler; returns how many
    handlers it filters. Idempotent; call it after Prefect is imported (which configures logging)."""
    expected = EXPECTED + tuple(extra)
    count = 0
    for handler in _console_handlers():
        current = next((f for f in handler.filters if isinstance(f, QuietExpected)), None)
        if current is None:
            handler.addFilter(QuietExpected(expected))
        else:
            current.expected = tuple(dict.fromkeys(current.expected + expected))
        count += 1
    return count


# -- the command line's console: sentences on screen, tracebacks in a file ------------


class _NoTraceback(logging.Formatter):
    """Formats a record through `inner` without its traceback or stack (the record itself is untouched,
    so a file handler further on still writes them)."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


class _NotForConsole(logging.Filter):
    """Drops records logged with extra={"console": False}: what the command then prints itself, better laid out
    (the Prefect UI and the log file still have them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "console", True) is not False


def log_file() -> Path:
    """Where the command line writes warnings and errors with their tracebacks."""
    from flows.processes import run_dir

    return run_dir().parent / "twomountains.log"


def file_handler(path: Path | None = None) -> logging.Handler | None:
    """A handler writing warnings and errors, tracebacks included, to `path` (None when it cannot be opened)."""
    path = path or log_file()
    for logger in [logging.getLogger(), logging.getLogger("prefect")]:
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path.resolve():
                return handler
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(process)d: %(message)s"))
    return handler


def quiet_console(path: Path | None = None) -> int:
    """For the command line: Prefect's console shows message lines only, never a traceback; warnings and
    errors with their tracebacks go to `log_file()`. Returns how many console handlers it changed.
    Idempotent; call it after Prefect is imported (which configures logging)."""
    handler_for_file = file_handler(path)
    count = 0
    for logger in [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                           if isinstance(lg, logging.Logger)]:
        consoles = [h for h in logger.handlers if h in _console_handlers()]
        if not consoles:
            continue
        if handler_for_file is not None and handler_for_file not in logger.handlers:
            logger.addHandler(handler_for_file)
        for handler in consoles:
            if not isinstance(handler.formatter, _NoTraceback):
                handler.setFormatter(_NoTraceback(handler.formatter))
                count += 1
            if not any(isinstance(f, _NotForConsole) for f in handler.filters):
                handler.addFilter(_NotForConsole())
    return count
