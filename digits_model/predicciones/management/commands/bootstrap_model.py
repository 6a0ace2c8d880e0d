"""Register the shipped model/clf.pickle as version 1 of the default model, if not yet done.

Safe to run on every start (``make run`` and the container do): it does nothing when the
default model already has versions. The server also does this lazily on its first request.
"""

from django.core.management.base import BaseCommand

from predicciones.services.registry import shipped_model_bootstrap


class Command(BaseCommand):
    help = "Register the shipped clf.pickle as the live version 1 if the registry is empty."

    def handle(self, *args, verbosity, **options):
        version = shipped_model_bootstrap()
        if verbosity:
            if version is None:
                self.stdout.write("registry already initialised; nothing to do")
            else:
                self.stdout.write(self.style.SUCCESS(f"registered {version} (live)"))
