"""Give a version a share of a model's traffic: 1..99 % (canary) or 0 % (blue/green standby).

Atomic; every worker follows within DIGITS_ROUTING_TTL seconds. Undo with `rollback`.
"""

from predicciones.management.base import OperatorCommand, canary_percent, positive_int
from predicciones.selectors import model_version_list
from predicciones.services.registry import deployment_set_candidate


class Command(OperatorCommand):
    help = "Route PERCENT % of a model's requests to VERSION (0 = warm standby)."

    def add_arguments(self, parser):
        parser.add_argument("model")
        parser.add_argument("version", type=positive_int)
        parser.add_argument(
            "--percent", type=canary_percent, required=True, help="0..99 (0: warm standby)"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, model, version, percent, json, **options):
        deployment_set_candidate(name=model, version=version, percent=percent, actor="cli")
        if json:
            self.write_json(model_version_list(name=model))
        else:
            self.stdout.write(
                self.style.SUCCESS(f"{model}:{version} now gets {percent}% of {model}'s traffic")
            )
