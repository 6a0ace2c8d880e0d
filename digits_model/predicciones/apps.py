"""The app's configuration: wires the registry's bootstrap into per-process routing."""

from django.apps import AppConfig


class PrediccionesConfig(AppConfig):
    name = "predicciones"
    verbose_name = "Predicción de Dígitos"

    def ready(self):
        from . import serving
        from .services.registry import shipped_model_bootstrap

        serving.set_bootstrap(shipped_model_bootstrap)
