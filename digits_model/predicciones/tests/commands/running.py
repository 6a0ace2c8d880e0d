"""Run an operator command in process as cron would see it: exit code, stdout, stderr."""

import io

from django.core.management import call_command
from django.core.management.base import CommandError


def command_run(command: str, *args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return code, out.getvalue(), err.getvalue()
