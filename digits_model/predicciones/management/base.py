"""Shared behaviour of the operator commands (their conventions are in the README).

``--json`` puts exactly one JSON document on stdout. Exit 0 when the command did its job;
exit 2, with one clear line on stderr and no traceback, when it could not run.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from predicciones.exceptions import PrediccionesError
from predicciones.storage import StoreError

EXIT_COULD_NOT_RUN = 2


class OperatorCommand(BaseCommand):
    """A command whose expected failures exit 2 with one line on stderr."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (PrediccionesError, StoreError, DatabaseError, ValueError) as exc:
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise CommandError(message.splitlines()[0], returncode=EXIT_COULD_NOT_RUN) from exc

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


def parse_since(text: str):
    """An ISO 8601 date or time as an aware datetime (naive values are taken as UTC)."""
    import datetime as dt

    from django.utils.dateparse import parse_date, parse_datetime

    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise ValueError(f"--since must be an ISO 8601 date or time, got {text!r}")
        moment = dt.datetime.combine(day, dt.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment
