"""Content negotiation for an API that only ever answers JSON.

DRF's default negotiation parses the ``Accept`` header and each parser's media type with
Django's e-mail based header parser on every request: about 0.2 ms of a /predict/ request
whose model work takes about a millisecond. Every response of this API is JSON
(errors included, by contract), so a view with a single renderer always uses it, and a
parser is chosen by an exact match of the request's base media type. Views with several
renderers get DRF's full negotiation.
"""

from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation

#: Longest Content-Type base we try to match; longer ones are refused (415), as DRF does.
MAX_MEDIA_TYPE_LENGTH = 256


class JSONOnlyContentNegotiation(BaseContentNegotiation):
    """Render with a view's only renderer (JSON) whatever ``Accept`` says; parse by exact type.

    Answering JSON to a client that asked for something else is allowed by HTTP (RFC 9110,
    section 12.5.1) and is what this API's error contract wants anyway; DRF would answer
    406, which no client of this API can act on.
    """

    _fallback = DefaultContentNegotiation()

    def select_parser(self, request, parsers):
        # DRF's request.content_type is the raw header: its base type is before any ";".
        content_type = (request.content_type or "").split(";", 1)[0].strip().lower()
        if not content_type or len(content_type) > MAX_MEDIA_TYPE_LENGTH:
            return None
        for parser in parsers:
            media_type = parser.media_type
            if "*" in media_type or ";" in media_type:
                # Wildcards or parameters: let DRF's full matching decide.
                return self._fallback.select_parser(request, parsers)
            if media_type == content_type:
                return parser
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        if len(renderers) != 1:
            # A view with a choice of renderers (a schema or docs view): negotiate properly.
            return self._fallback.select_renderer(request, renderers, format_suffix)
        return renderers[0], renderers[0].media_type
