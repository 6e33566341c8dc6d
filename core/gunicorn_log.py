"""gunicorn's access log without personal data: ``--logger-class core.gunicorn_log.AccessLogger``.

gunicorn writes no access log unless ``--access-logfile`` is given. When it is, this logger class
fills only the method, the path with its tokens replaced (core.logsafe.redact_path), the
protocol, the status, the size and the timings; every other atom (the client address ``%(h)s``,
the query ``%(q)s``, the referrer, the agent, any header or environ value) is written as ``-``,
so whatever ``--access-logformat`` asks for, no address or token is written.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn import glogging

from core.logsafe import redact_path


class AccessLogger(glogging.Logger):
    """gunicorn's logger, with the access-log atoms reduced to non-personal ones."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any
    ) -> dict[str, Any]:
        """The atoms gunicorn formats the access line from; absent atoms print as ``-``."""
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        method = environ.get("REQUEST_METHOD", "-")
        path = redact_path(environ.get("PATH_INFO", "") or "/")
        protocol = environ.get("SERVER_PROTOCOL", "-")
        sent = getattr(resp, "sent", None)
        return {
            "h": "-",
            "l": "-",
            "u": "-",
            "t": self.now(),
            "r": f"{method} {path} {protocol}",
            "s": status,
            "m": method,
            "U": path,
            "q": "-",
            "H": protocol,
            "b": str(sent) if sent is not None else "-",
            "B": sent,
            "f": "-",
            "a": "-",
            "T": request_time.seconds,
            "D": request_time.seconds * 1_000_000 + request_time.microseconds,
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
            "L": f"{request_time.seconds}.{request_time.microseconds:06d}",
            "p": f"<{os.getpid()}>",
        }
