"""Log line formats: ``key=value`` text for people, one JSON object a line for log shippers.

Django-free on purpose: gunicorn's own logging uses these formatters too (gunicorn.conf.py),
before any Django setting exists. Structured fields travel in the record's ``fields`` extra.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

#: Attributes every LogRecord has; anything else a caller passed as ``extra`` is a field.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def record_fields(record: logging.LogRecord) -> dict:
    """The structured fields of a record: its ``fields`` dict, plus any other ``extra`` keys."""
    fields = dict(getattr(record, "fields", None) or {})
    for key, value in vars(record).items():
        if key not in _RECORD_ATTRS and key != "fields" and not key.startswith("_"):
            fields.setdefault(key, value)
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Characters that end or rewrite a line somewhere: C0 controls (``\r`` returns to the
#: line's start, ``\x1b`` starts a terminal escape), DEL, and the Unicode line breaks some
#: log viewers honour. Client text (a path, a method) must never contain them raw.
_LINE_BREAKING = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
_NEEDS_QUOTES = re.compile('[\\s"=\x00-\x1f\x7f\x85\u2028\u2029]')


def _escape(match: re.Match) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or f"\\u{ord(char):04x}"


def escape_line(text: str) -> str:
    """``text`` with every line-breaking or control character written as an escape."""
    return _LINE_BREAKING.sub(_escape, text)


def _text(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text == "" or _NEEDS_QUOTES.search(text):
        # Quoted and escaped (json.dumps writes every non-ASCII character as \uXXXX): one
        # record stays one line.
        return json.dumps(text)
    return text


class PlainFormatter(logging.Formatter):
    """``2025-01-01T12:00:00.000Z INFO logger message key=value ...`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        message = escape_line(record.getMessage())
        parts = [_timestamp(record), record.levelname, record.name, message]
        parts += [f"{key}={_text(value)}" for key, value in record_fields(record).items()]
        line = " ".join(part for part in parts if part)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message`` and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in record_fields(record).items():
            document.setdefault(key, value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class SecurityRecordsWithoutTraceback(logging.Filter):
    """Keep ``django.security`` messages, drop their tracebacks.

    Django logs a client's SuspiciousOperation (10,000 form fields, a bad Host header) at
    ERROR with the exception attached: the message says all there is to know, and a
    traceback per abusive request only buries real errors.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security"):
            record.exc_info = None
            record.exc_text = None
        return True
