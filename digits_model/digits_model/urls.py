"""Root URL configuration: everything is served by the predicciones app."""

from django.urls import include, path

urlpatterns = [path("", include("predicciones.urls"))]

handler400 = "predicciones.errors.bad_request"
handler403 = "predicciones.errors.permission_denied"
handler404 = "predicciones.errors.page_not_found"
handler500 = "predicciones.errors.server_error"
