"""HTML pages."""

from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def index(request):
    """The upload / draw page; it calls POST /predict/ from the browser."""
    return render(request, "index.html")
