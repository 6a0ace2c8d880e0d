"""Request body parsers: DRF's JSON parser with the nesting of a document bounded.

Every JSON body this API takes is one flat object (``{"query_id": ..., "label": ...}``).
Python's decoder recurses once per level and raises ``RecursionError`` (not ``ValueError``)
at about a thousand, which DRF's parser does not catch; a body of ``[[[[...`` was a 500.
"""

from __future__ import annotations

from rest_framework.parsers import JSONParser

from .exceptions import PrediccionesError

#: Deepest nesting accepted: an object holding lists of objects is depth 3.
MAX_JSON_DEPTH = 8


class JSONTooDeepError(PrediccionesError):
    default_message = f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."


class BoundedJSONParser(JSONParser):
    """JSON bodies nested at most :data:`MAX_JSON_DEPTH` deep; deeper ones are a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise JSONTooDeepError() from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise JSONTooDeepError()
        return data


def json_depth(value) -> int:
    """How deep lists and objects nest in a decoded document (a scalar is 0), without
    recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_JSON_DEPTH:  # deeper than that is refused whatever lies below
            stack.extend((child, depth + 1) for child in children)
    return deepest
