"""Stop a running candidate, or, with none, put the previously live version back."""

from predicciones.management.base import OperatorCommand
from predicciones.selectors import model_version_list
from predicciones.services.registry import deployment_rollback


class Command(OperatorCommand):
    help = "Roll MODEL back: stop its candidate, or restore the previous live version."

    def add_arguments(self, parser):
        parser.add_argument("model")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, model, json, **options):
        deployment = deployment_rollback(name=model, actor="cli")
        if json:
            self.write_json(model_version_list(name=model))
        else:
            self.stdout.write(
                self.style.SUCCESS(f"{model}:{deployment.live.version} is live, no candidate")
            )
