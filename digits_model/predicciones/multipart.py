"""A strict ``multipart/form-data`` parser over a request body already in memory.

``POST /predict/`` bodies are small (bounded by ``DATA_UPLOAD_MAX_MEMORY_SIZE`` before they
are read) and hold one file: parsing them is finding the delimiters in the bytes and slicing
each part out once. Everything Django's parser refuses is refused here too (a missing or
invalid boundary, headers without their blank line, a part without its closing delimiter,
more fields or files than the settings allow); what Django skips is skipped (parts without
a name, files whose name is empty once sanitised).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from django.utils.http import parse_header_parameters

from .exceptions import FormLimitError, MalformedBodyError

#: A boundary as RFC 2046 allows it (Django checks the same: printable, at most 70 in the
#: RFC, 200 in Django, not ending in a space).
BOUNDARY_RE = re.compile(rb"[ -~]{0,200}[!-~]")
#: Longest header block of one part; real ones are under 200 bytes.
MAX_PART_HEADER_BYTES = 4096
#: ``value; name="quoted"; other=token`` without escapes or RFC 2231 (``name*=``): what
#: clients send. Anything else goes to Django's full parser (built on the e-mail package,
#: about 25 µs a header, most of the parsing cost of a small upload).
SIMPLE_PARAMETERS = re.compile(
    r'\s*;\s*([!#$%&\'+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"([^"\\]*)"|([!#$%&\'+.^_`|~0-9A-Za-z-]*))'
)
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z/-]+")


@dataclass(frozen=True, slots=True)
class FilePart:
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Form:
    """Each name's values in the order sent: text fields, and files."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[FilePart]] = field(default_factory=dict)


def header_parameters(line: str) -> tuple[str, dict[str, str]]:
    """``parse_header_parameters`` (Django's): the value, lowercased, and its parameters."""
    line = line.strip()
    value = TOKEN.match(line)
    if value is None:
        return parse_header_parameters(line)
    params = {}
    position = value.end()
    while position < len(line):
        match = SIMPLE_PARAMETERS.match(line, position)
        if match is None:
            return parse_header_parameters(line)
        name = match[1].lower()
        params[name] = match[2] if match[2] is not None else match[3]
        position = match.end()
    return value[0].lower(), params


@functools.lru_cache(maxsize=256)
def boundary_of(content_type: str) -> bytes:
    """The ``boundary`` parameter of a multipart Content-Type header, checked."""
    _, params = header_parameters(content_type)
    boundary = params.get("boundary", "").encode("latin-1", "replace")
    if not BOUNDARY_RE.fullmatch(boundary):
        raise MalformedBodyError()
    return boundary


def parse_form(body: bytes, boundary: bytes, *, max_fields: int, max_files: int) -> Form:
    """Every part of ``body`` (a ``multipart/form-data`` body with ``boundary``).

    Raises
    ------
    MalformedBodyError
        No opening delimiter, a part's headers without their blank line, or a part without
        the delimiter that closes it.
    FormLimitError
        More than ``max_fields`` text fields or ``max_files`` files.
    """
    delimiter = b"--" + boundary
    form = Form()
    n_fields = n_files = 0
    start = body.find(delimiter)
    if start < 0:
        raise MalformedBodyError()
    position = start + len(delimiter)
    separator = b"\r\n" + delimiter
    while not body.startswith(b"--", position):
        # The rest of the delimiter line (RFC 2046 allows trailing white space), then headers.
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise MalformedBodyError()
        headers_start = line_end + 2
        if body.startswith(b"\r\n", headers_start):
            headers_end, data_start = headers_start, headers_start + 2  # a part without headers
        else:
            limit = headers_start + MAX_PART_HEADER_BYTES
            headers_end = body.find(b"\r\n\r\n", headers_start, limit)
            if headers_end < 0:
                raise MalformedBodyError()
            data_start = headers_end + 4
        data_end = body.find(separator, data_start)
        if data_end < 0:
            raise MalformedBodyError()
        position = data_end + len(separator)
        name, filename, content_type = _part_headers(body[headers_start:headers_end])
        if name is None:
            continue
        if filename is None:
            n_fields += 1
            if n_fields > max_fields:
                raise FormLimitError()
            value = body[data_start:data_end].decode("utf-8", "replace")
            form.fields.setdefault(name, []).append(value)
            continue
        filename = _sanitised(filename)
        if not filename:
            continue
        n_files += 1
        if n_files > max_files:
            raise FormLimitError()
        part = FilePart(filename, content_type, body[data_start:data_end])
        form.files.setdefault(name, []).append(part)
    return form


def _part_headers(block: bytes) -> tuple[str | None, str | None, str]:
    """(name, filename or None, content type) from a part's header lines."""
    name = filename = None
    content_type = ""
    for line in block.split(b"\r\n") if block else ():
        key, colon, value = line.partition(b":")
        if not colon:
            raise MalformedBodyError()
        key = key.strip().lower()
        text = value.strip().decode("utf-8", "replace")
        if key == b"content-disposition":
            disposition, params = header_parameters(text)
            if disposition != "form-data":
                return None, None, ""
            name = params.get("name")
            filename = params.get("filename")
        elif key == b"content-type":
            content_type = text
        elif key == b"content-transfer-encoding" and text.lower() not in ("binary", "8bit", "7bit"):
            # base64 and quoted-printable parts: no client of this API sends them.
            raise MalformedBodyError()
    return name, filename, content_type


def _sanitised(filename: str) -> str:
    """The file's base name, as Django keeps it (path parts and dot names dropped)."""
    base = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip()
    return "" if base in ("", ".", "..") else base
