"""Decide a running canary from its live traffic: promote it, roll it back, or wait.

Promotes when, over at least --min-requests candidate requests, the candidate's error rate,
median latency and (with feedback) live accuracy are no worse than the live version's;
rolls back otherwise. Does nothing without a canary, or before enough traffic.
"""

from django.conf import settings

from predicciones.management.base import OperatorCommand
from predicciones.services.canary import canary_review


class Command(OperatorCommand):
    help = "Promote or roll back a running canary based on its live traffic."

    def add_arguments(self, parser):
        parser.add_argument("--model", default=None)
        parser.add_argument("--min-requests", type=int, help="Candidate requests needed.")
        parser.add_argument("--dry-run", action="store_true", help="Decide but do not act.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        review = canary_review(
            model_name=opts["model"] or settings.DIGITS_DEFAULT_MODEL,
            min_requests=opts["min_requests"],
            apply=not opts["dry_run"],
        )
        if opts["json"]:
            self.write_json(review.as_dict())
            return
        self.stdout.write(
            f"{review.model}: {review.decision}" + (" (applied)" if review.applied else "")
        )
        for reason in review.reasons:
            self.stdout.write(f"  - {reason}")
