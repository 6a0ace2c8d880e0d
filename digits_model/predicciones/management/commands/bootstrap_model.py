"""Register the shipped model/clf.pickle as version 1 of the default model, if not yet done.

Safe to run on every start (``make run`` and the container do): it does nothing when the
default model already has versions, except putting the shipped version's artifact and
training statistics into the artifact store if it lacks them (a registry made on the local
folder, then pointed at S3). The server also registers lazily on its first request.
"""

from predicciones.management.base import OperatorCommand
from predicciones.services.registry import shipped_model_bootstrap


class Command(OperatorCommand):
    help = "Register the shipped clf.pickle as the live version 1 if the registry is empty."

    def handle(self, *args, verbosity, **options):
        version = shipped_model_bootstrap()
        if verbosity:
            if version is None:
                self.stdout.write("registry already initialised; nothing to do")
            else:
                self.stdout.write(self.style.SUCCESS(f"registered {version} (live)"))
