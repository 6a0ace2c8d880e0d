from django.apps import AppConfig


class PrediccionesConfig(AppConfig):
    name = "predicciones"
    verbose_name = "Predicción de Dígitos"
