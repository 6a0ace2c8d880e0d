"""Shared behaviour of the operator commands (their conventions: docs/lifecycle.md).

``--json`` puts exactly one JSON document on stdout. Exit 0 when the command did its job;
exit 2, with one clear line on stderr and no traceback, when it could not run: the project's
own errors (a bad option or setting, an unknown model, a state that forbids the action), the
artifact store or the database down. Anything else is a bug and shows its traceback. Log lines stay
out of a command's output unless asked for with ``-v 2`` (or ``-v 3`` for debug lines).
"""

import argparse
import json
import logging
import math

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from predicciones.exceptions import OperatorError, PrediccionesError
from predicciones.storage import StoreError

EXIT_COULD_NOT_RUN = 2


class OperatorCommand(BaseCommand):
    """A command whose expected failures exit 2 with one line on stderr."""

    def execute(self, *args, **options):
        verbosity = int(options.get("verbosity", 1))
        if verbosity < 2:
            # The command's own output is its result; INFO lines from the services below it
            # (model loaded, report recorded...) would be noise on stderr, before the one line
            # a failure prints. -v 2 shows them, -v 3 adds debug lines.
            logging.disable(logging.ERROR)
        elif verbosity >= 3:
            logging.getLogger().setLevel(logging.DEBUG)
        try:
            return super().execute(*args, **options)
        except (PrediccionesError, StoreError, DatabaseError) as exc:
            raise CommandError(one_line(exc), returncode=EXIT_COULD_NOT_RUN) from exc
        finally:
            if verbosity < 2:
                logging.disable(logging.NOTSET)

    def create_parser(self, prog_name, subcommand, **kwargs):
        """A parser whose usage errors are one stderr line and exit 2, like other failures."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message):
            if parser.called_from_command_line:
                parser.exit(EXIT_COULD_NOT_RUN, f"{parser.prog}: error: {message}\n")
            raise CommandError(f"Error: {message}", returncode=EXIT_COULD_NOT_RUN)

        parser.error = error
        return parser

    def write_json(self, document) -> None:
        self.stdout.write(json.dumps(document, indent=2, default=str))

    def write_account(self, document: dict, render, *, as_json: bool) -> None:
        """Print what a multi-step command did (the JSON document, or ``render(document)`` for
        people); then, if a step failed after others did their part, exit 2 naming it."""
        if as_json:
            self.write_json(document)
        else:
            self.stdout.write(render(document))
        if document.get("status") == "failed":
            raise CommandError(
                f"the {document['step']} step failed: {document['error']}",
                returncode=EXIT_COULD_NOT_RUN,
            )


class RolloutCommand(OperatorCommand):
    """``canary``, ``promote``, ``rollback``: act only on the deployment the operator saw.

    The command reads the deployment, says what it is acting on, and acts only if the
    deployment is still that once its row is locked (compare-and-swap): of two simultaneous
    commands, the second finds the state changed and exits 2, nothing done. ``--expect-live N``
    extends the check back to what the operator saw before typing the command.
    """

    def add_arguments(self, parser):
        parser.add_argument("model")
        self.add_action_arguments(parser)
        parser.add_argument(
            "--expect-live",
            type=positive_int,
            metavar="N",
            help="Act only if version N is live (what `models` showed); else exit 2.",
        )
        parser.add_argument("--json", action="store_true")

    def add_action_arguments(self, parser) -> None:
        pass

    def handle(self, *args, model, expect_live, json, **options):
        from predicciones.selectors import deployment_get, model_version_list
        from predicciones.services.registry import DeploymentState, deployment_describe

        seen = deployment_get(name=model)
        if not json:
            self.stdout.write(f"{model}: acting on {deployment_describe(seen)}")
        deployment = self.act(
            model=model,
            expect=DeploymentState.of(seen, "this command read it"),
            expect_live=expect_live,
            **options,
        )
        if json:
            self.write_json(model_version_list(name=model))
        else:
            self.stdout.write(self.style.SUCCESS(f"{model}: now {deployment_describe(deployment)}"))

    def act(self, *, model, expect, expect_live, **options):
        raise NotImplementedError


def one_line(exc: BaseException) -> str:
    """An exception as the one line an operator reads."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message.splitlines()[0]


# --- Numeric option types: argparse names the option in its error ("argument --seed: ...") ----
def _number(kind, text: str, what: str, ok) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if (isinstance(value, float) and not math.isfinite(value)) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    return _number(int, text, "an integer >= 0", lambda v: v >= 0)


def random_seed(text: str) -> int:
    """A random seed, in the range every generator used in training accepts."""
    return _number(int, text, "an integer from 0 to 4294967295", lambda v: 0 <= v < 2**32)


def int_between(low: int, high: int):
    """An option type for whole numbers from ``low`` to ``high``."""

    def parse(text: str) -> int:
        return _number(int, text, f"an integer from {low} to {high}", lambda v: low <= v <= high)

    return parse


def positive_int(text: str) -> int:
    return _number(int, text, "an integer >= 1", lambda v: v >= 1)


def canary_percent(text: str) -> int:
    return _number(int, text, "a percentage from 0 to 99", lambda v: 0 <= v <= 99)


def non_negative_float(text: str) -> float:
    return _number(float, text, "a number >= 0", lambda v: v >= 0)


def fraction(text: str) -> float:
    """A share or accuracy difference: 0..1 (0.005 is half a point)."""
    return _number(
        float, text, "a fraction from 0 to 1 (0.005 is half a point)", lambda v: 0 <= v <= 1
    )


def positive_fraction(text: str) -> float:
    return _number(float, text, "a fraction above 0 and at most 1", lambda v: 0 < v <= 1)


def positive_float(text: str) -> float:
    return _number(float, text, "a number above 0", lambda v: v > 0)


def parse_since(text: str, option: str = "--since"):
    """An ISO 8601 date or time as an aware datetime (naive values are taken as UTC)."""
    import datetime as dt

    from django.utils.dateparse import parse_date, parse_datetime

    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise OperatorError(f"{option} must be an ISO 8601 date or time, got {text!r}")
        moment = dt.datetime.combine(day, dt.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment
