"""Make the candidate (or a given version) live. The old live version stays one rollback away."""

from predicciones.management.base import OperatorCommand, positive_int
from predicciones.selectors import model_version_list
from predicciones.services.registry import deployment_promote


class Command(OperatorCommand):
    help = "Promote MODEL's candidate, or VERSION, to live."

    def add_arguments(self, parser):
        parser.add_argument("model")
        parser.add_argument("version", type=positive_int, nargs="?")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, model, version, json, **options):
        deployment = deployment_promote(name=model, version=version, actor="cli")
        if json:
            self.write_json(model_version_list(name=model))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{model}:{deployment.live.version} is live "
                    f"(previous: {model}:{deployment.previous_live.version})"
                )
            )
