"""gunicorn's own lines in the application's JSON: one access line per request, carrying the id
Django gave the request (its X-Request-ID response header), and gunicorn's errors, among them
the errors that escape Django (a streamed response failing halfway), with that id too.

gunicorn.conf.py names this class as gunicorn's logger; with LOG_FORMAT=text (development)
gunicorn logs as it always does.
"""

from __future__ import annotations

import os

from gunicorn import glogging

from core.env import env_log_format
from core.logging import ContextFilter, json_formatter

# An access line needs the request's id; its user would cost a session lookup after the response.
ACCESS_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"


class Logger(glogging.Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        self.json = env_log_format() == "json"
        if not self.json:
            return
        for handler in self.access_log.handlers:
            handler.setFormatter(json_formatter(ACCESS_FIELDS))
        for handler in self.error_log.handlers:
            handler.setFormatter(json_formatter())
            if not any(isinstance(f, ContextFilter) for f in handler.filters):
                handler.addFilter(ContextFilter())  # an error inside a request carries its ids

    def access(self, resp, req, environ, request_time) -> None:
        if not self.json:
            return super().access(resp, req, environ, request_time)
        if not self.access_log_enabled:
            return None
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = {name.lower(): value for name, value in resp.headers}
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", "-")
        fields = {
            # Django's id for the request (kept from the load balancer's X-Request-ID when it sent one).
            "request_id": headers.get("x-request-id") or environ.get("HTTP_X_REQUEST_ID") or "-",
            "method": method,
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "remote_addr": environ.get("REMOTE_ADDR", "-"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR", ""),
            "user_agent": environ.get("HTTP_USER_AGENT", ""),
            "referer": environ.get("HTTP_REFERER", ""),
            "protocol": environ.get("SERVER_PROTOCOL", ""),
            "pid": os.getpid(),  # which gunicorn worker served it
        }
        try:
            self.access_log.info("%s %s %s", method, path, status, extra=fields)
        except Exception:
            self.exception("could not write an access line")
        return None
