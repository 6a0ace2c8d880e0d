"""Routes of the predicciones app. API routes accept a missing trailing slash too."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from . import apis, metrics, views

urlpatterns = [
    path("", views.index, name="index"),
    re_path(r"^dashboard/?$", views.dashboard, name="dashboard"),
    re_path(r"^predict/?$", apis.PredictApi.as_view(), name="predict"),
    re_path(r"^feedback/?$", apis.FeedbackApi.as_view(), name="feedback"),
    re_path(r"^models/?$", apis.ModelListApi.as_view(), name="models"),
    re_path(r"^health/?$", apis.HealthApi.as_view(), name="health"),
    re_path(r"^health/live/?$", apis.LivenessApi.as_view(), name="health-live"),
    re_path(r"^metrics/?$", metrics.metrics_view, name="metrics"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(
        r"^api/docs/?$",
        views.ApiDocsView.as_view(url_name="schema"),
        name="api-docs",
    ),
    re_path(
        r"^admin/models/(?P<name>[^/]+)/canary/?$",
        apis.ModelCanaryApi.as_view(),
        name="admin-canary",
    ),
    re_path(
        r"^admin/models/(?P<name>[^/]+)/promote/?$",
        apis.ModelPromoteApi.as_view(),
        name="admin-promote",
    ),
    re_path(
        r"^admin/models/(?P<name>[^/]+)/rollback/?$",
        apis.ModelRollbackApi.as_view(),
        name="admin-rollback",
    ),
]
