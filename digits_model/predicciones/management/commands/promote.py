"""Make the candidate (or a given version) live. The old live version stays one rollback away.

Acts only on the deployment it read (and, with ``--expect-live N``, only while N is live).
"""

from predicciones.management.base import RolloutCommand, positive_int
from predicciones.services.registry import deployment_promote


class Command(RolloutCommand):
    help = "Promote MODEL's candidate, or VERSION, to live."

    def add_action_arguments(self, parser):
        parser.add_argument("version", type=positive_int, nargs="?")

    def act(self, *, model, expect, expect_live, version, **options):
        return deployment_promote(
            name=model, version=version, actor="cli", expect=expect, expect_live=expect_live
        )
