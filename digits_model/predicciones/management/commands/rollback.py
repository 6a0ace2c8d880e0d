"""Stop a running candidate, or, with none, put the previously live version back.

Acts only on the deployment it read (and, with ``--expect-live N``, only while N is live), so
two operators rolling back at once cannot undo each other: the second exits 2.
"""

from predicciones.management.base import RolloutCommand
from predicciones.services.registry import deployment_rollback


class Command(RolloutCommand):
    help = "Roll MODEL back: stop its candidate, or restore the previous live version."

    def act(self, *, model, expect, expect_live, **options):
        return deployment_rollback(name=model, actor="cli", expect=expect, expect_live=expect_live)
