"""HTML pages."""

import datetime as dt

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from . import selectors
from .dashboard import dashboard_context
from .models import RegisteredModel

#: How far back the dashboard counts traffic per version.
TRAFFIC_PERIOD = dt.timedelta(hours=24)
#: Reports drawn in the score history.
HISTORY_REPORTS = 100


@require_safe
def index(request):
    """The upload / draw page; it calls POST /predict/ from the browser."""
    return render(request, "index.html")


@require_safe
def dashboard(request):
    """Drift and traffic at a glance for one model (``?model=``, default the default model)."""
    models = list(RegisteredModel.objects.values_list("name", flat=True))
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
    return render(request, "dashboard.html", context)
