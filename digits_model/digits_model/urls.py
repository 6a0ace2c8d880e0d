"""Root URL configuration: everything is served by the predicciones app."""

from django.urls import include, path

urlpatterns = [path("", include("predicciones.urls"))]

handler400 = "predicciones.exception_handler.bad_request"
handler403 = "predicciones.exception_handler.permission_denied"
handler404 = "predicciones.exception_handler.page_not_found"
handler500 = "predicciones.exception_handler.server_error"
