"""HTML pages."""

import datetime as dt
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularSwaggerSplitView

from . import selectors
from .dashboard import dashboard_context
from .exception_handler import first_line
from .security import csp_allowing_inline_styles

logger = logging.getLogger(__name__)

#: How far back the dashboard counts traffic per version.
TRAFFIC_PERIOD = dt.timedelta(hours=24)
#: Reports drawn in the score history.
HISTORY_REPORTS = 100


@require_safe
def index(request):
    """The upload / draw page; it calls POST /predict/ from the browser (which sends a
    photo above the upload limit smaller, so it needs the limit)."""
    return render(request, "index.html", {"max_upload_bytes": settings.DIGITS_MAX_UPLOAD_BYTES})


@require_safe
def dashboard(request):
    """Drift and traffic at a glance for one model (``?model=``, default the default model).

    With the database down: a short page saying so, status 503.
    """
    try:
        return _dashboard(request)
    except DatabaseError as exc:
        logger.warning("dashboard: database unavailable: %s", first_line(exc))
        response = render(request, "unavailable.html", {"what": "the database"}, status=503)
        response["Retry-After"] = "30"
        response.is_page = True  # the middleware keeps this page (it makes API errors JSON)
        return response


def _dashboard(request):
    models = selectors.model_name_list()
    name = request.GET.get("model") or settings.DIGITS_DEFAULT_MODEL
    if models and name not in models:
        raise Http404(f"Unknown model; registered models: {', '.join(models)}.")
    context = dashboard_context(
        name=name,
        models=models,
        report=selectors.drift_report_latest(name=name),
        history=selectors.drift_report_history(name=name, limit=HISTORY_REPORTS),
        traffic=selectors.prediction_traffic_by_version(
            name=name, since=timezone.now() - TRAFFIC_PERIOD
        ),
        versions=selectors.model_version_list(name=name),
    )
    response = render(request, "dashboard.html", context)
    if settings.DIGITS_CSP:  # the heat maps and bars are coloured by style attributes
        response["Content-Security-Policy"] = csp_allowing_inline_styles()
    return response


class ApiDocsView(SpectacularSwaggerSplitView):
    """``GET /api/docs/``: Swagger UI from our own static files (drf-spectacular-sidecar).

    The split view serves its start-up script as a file, so scripts stay ``'self'`` only;
    its page carries one small inline ``<style>`` block, allowed here and nowhere else.
    """

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if settings.DIGITS_CSP:
            response["Content-Security-Policy"] = csp_allowing_inline_styles()
        return response
