"""Give a version a share of a model's traffic: 1..99 % (canary) or 0 % (blue/green standby).

Atomic; every worker follows within DIGITS_ROUTING_TTL seconds. Undo with `rollback`. Acts
only on the deployment it read (and, with ``--expect-live N``, only while N is live).
"""

from predicciones.management.base import RolloutCommand, canary_percent, positive_int
from predicciones.services.registry import deployment_set_candidate


class Command(RolloutCommand):
    help = "Route PERCENT % of a model's requests to VERSION (0 = warm standby)."

    def add_action_arguments(self, parser):
        parser.add_argument("version", type=positive_int)
        parser.add_argument(
            "--percent", type=canary_percent, required=True, help="0..99 (0: warm standby)"
        )

    def act(self, *, model, expect, expect_live, version, percent, **options):
        return deployment_set_candidate(
            name=model,
            version=version,
            percent=percent,
            actor="cli",
            expect=expect,
            expect_live=expect_live,
        )
