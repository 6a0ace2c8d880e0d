"""Decide a running canary from its live traffic: promote it, roll it back, or wait.

Promotes when, over at least --min-requests candidate requests, the candidate's error rate,
median latency and (with feedback) live accuracy are no worse than the live version's;
rolls back otherwise. Does nothing without a canary, or before enough traffic. The decision
applies only to the versions it was made on: a candidate swapped in meanwhile is left alone.
"""

from django.conf import settings

from predicciones.management.base import OperatorCommand, positive_int
from predicciones.services.canary_review import canary_review


class Command(OperatorCommand):
    help = "Promote or roll back a running canary based on its live traffic."

    def add_arguments(self, parser):
        parser.add_argument("--model", default=None, help="Model name (default: the default).")
        parser.add_argument(
            "--min-requests",
            type=positive_int,
            help="Candidate requests needed (default: DIGITS_CANARY_MIN_REQUESTS).",
        )
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
        sentence = review.sentence()
        self.stdout.write(sentence[0].upper() + sentence[1:] + ".")
