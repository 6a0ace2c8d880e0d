"""HTML pages."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularSwaggerSplitView


@require_safe
def index(request):
    """The upload / draw page; it calls POST /predict/ from the browser."""
    return render(request, "index.html")


class ApiDocsView(SpectacularSwaggerSplitView):
    """``GET /api/docs/``: Swagger UI from our own static files (drf-spectacular-sidecar).

    The split view serves its start-up script as a file, so scripts stay ``'self'`` only;
    its page carries one small inline ``<style>`` block, allowed here and nowhere else.
    """

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if settings.DIGITS_CSP:
            response["Content-Security-Policy"] = settings.DIGITS_CSP.replace(
                "style-src 'self'", "style-src 'self' 'unsafe-inline'"
            )
        return response
