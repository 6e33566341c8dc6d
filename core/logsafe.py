"""Logging without personal data.

An exception's text may quote what it was working on (an SMTP reply names the recipient, an
email-validator error repeats the address); a request line carries signed tokens whose payload
is readable and a query that may hold a searched address; the embedded server writes the client
IP in front of each line. The helpers here reduce each to what an operator needs: the kind of
error, an SMTP code, the method, a path with its tokens replaced, the status.
"""

from __future__ import annotations

import logging
import re
import traceback

#: What replaces a signed token or a query string in a logged path.
TOKEN_PLACEHOLDER = "<token>"  # noqa: S105 (a placeholder, not a secret)
QUERY_PLACEHOLDER = "<query>"

# The tracking routes (/o/ beacon, /c/ click, /h/ hosted image, /u/ unsubscribe) carry a token
# as their second segment, whatever its length.
_TRACKING = re.compile(r"(?<![^\s\"'/])/([ochu])/[^\s/?#\"']+")
# Any other long opaque segment is a token too (confirmation, preference and sender links).
_OPAQUE = re.compile(r"(?<=/)[A-Za-z0-9_.~%-]{24,}(?=[/?#\s\"']|$)")
_QUERY = re.compile(r"\?[^\s#\"']*")
# werkzeug's request lines start with "<client address> - - [".
_CLIENT_PREFIX = re.compile(r"^\S+ - - \[")


def redact_path(text: str) -> str:
    """``text`` (a path, a request line) with every token and query string replaced."""
    text = _TRACKING.sub(lambda m: f"/{m.group(1)}/{TOKEN_PLACEHOLDER}", text)
    text = _OPAQUE.sub(TOKEN_PLACEHOLDER, text)
    return _QUERY.sub(f"?{QUERY_PLACEHOLDER}", text)


def error_summary(exc: BaseException) -> str:
    """The kind of an error, with its SMTP code if it has one; never the error's text."""
    code = getattr(exc, "smtp_code", None)
    if code is None:
        recipients = getattr(exc, "recipients", None)
        if isinstance(recipients, dict) and recipients:
            # SMTPRecipientsRefused: {address: (code, reply)}; keep the codes only.
            codes = sorted({str(reply[0]) for reply in recipients.values()})
            return f"{type(exc).__name__} (SMTP {', '.join(codes)})"
    if isinstance(code, int):
        return f"{type(exc).__name__} (SMTP {code})"
    return type(exc).__name__


def frames(exc: BaseException) -> str:
    """Where ``exc`` was raised (its traceback's frames, code lines only), for a log line that
    may not carry the exception's text."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


def log_failure(log: logging.Logger, exc: BaseException, message: str, *args: object) -> None:
    """Log ``message`` at ERROR with the error's kind and frames, but not its text."""
    log.error(message + ": %s\n%s", *args, error_summary(exc), frames(exc))


class AccessLogFilter(logging.Filter):
    """For the 'werkzeug' logger: drops the client address from each line and replaces tokens
    and query strings in the request line (the embedded server of ``flask run``); for the app's
    logger, the path in Flask's "Exception on <path>" line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_path(_CLIENT_PREFIX.sub("[", record.msg, count=1))
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_path(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def install_access_log_filter(name: str = "werkzeug") -> None:
    """Attach :class:`AccessLogFilter` to the named logger once (werkzeug's by default)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, AccessLogFilter) for f in logger.filters):
        logger.addFilter(AccessLogFilter())


class ExceptionTextFilter(logging.Filter):
    """For loggers of libraries that log a traceback with the exception's text (dramatiq's
    worker): keeps the frames and the kind of error, drops the text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.exc_info = None
            record.exc_text = f"{frames(exc)}\n{error_summary(exc)}"
        return True


def install_exception_text_filter(*names: str) -> None:
    """Attach :class:`ExceptionTextFilter` to each named logger once."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ExceptionTextFilter) for f in logger.filters):
            logger.addFilter(ExceptionTextFilter())
