"""The prediction log's commits under load on PostgreSQL: how many rows each commit carries
with the group commit, and how many commits a second the database took.

The service as ``make run`` starts it, on a fresh database of the PostgreSQL server named by
``--database-url`` (a maintenance database: the script creates its own and drops it), takes
``wrk`` at c=32 for ``--seconds``; PostgreSQL's own counter of committed transactions
(``pg_stat_database.xact_commit``) and the rows in the log are read before and after. Rows
per commit is a count, steady on a busy machine; commits a second is a rate, and is the
first shared bottleneck of N hosts on one database (docs/performance.md, "Scale").

    .venv/bin/python -m bench.commit_rate --database-url postgres://u:p@127.0.0.1:5432/postgres
        [--seconds 10] [--batch-rows 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from bench.images import http_image
from bench.load import wrk
from bench.servers import logged_predictions, service_server


def xact_commits(url: str) -> int:
    """Transactions PostgreSQL committed in the database so far (its statistics, flushed)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a maintenance database's URL")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch-rows", type=int, default=None, help="DIGITS_LOG_BATCH_ROWS")
    args = parser.parse_args(argv)
    name = f"digits_commits_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.database_url.rpartition('/')[0]}/{name}"
    var_root = Path(tempfile.mkdtemp(prefix="digits-commits-"))
    image_path = var_root / "digit.jpg"
    image_path.write_bytes(http_image())
    env = {"DATABASE_URL": url}
    if args.batch_rows:
        env["DIGITS_LOG_BATCH_ROWS"] = str(args.batch_rows)
    try:
        server = service_server(var_root, image_path, "service", "service", **env)
        server.start()
        try:
            wrk(
                server.url,
                image_path,
                connections=args.connections,
                seconds=2,
                result=var_root / "w.json",
            )
            time.sleep(1)
            rows_before, commits_before = logged_predictions(server), xact_commits(url)
            out = wrk(
                server.url,
                image_path,
                connections=args.connections,
                seconds=args.seconds,
                result=var_root / "run.json",
            )
            time.sleep(1)
            rows, commits = logged_predictions(server), xact_commits(url)
        finally:
            server.stop()
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    seconds = out["duration_us"] / 1e6
    rows, commits = rows - rows_before, commits - commits_before
    result = {
        "server": server.config.split("; SQLite")[0] + "; PostgreSQL",
        "connections": args.connections,
        "seconds": round(seconds, 1),
        "requests_per_second": round(out["requests"] / seconds, 1),
        "rows": rows,
        "commits": commits,  # every transaction: the log's, and the reads (routing, counts)
        "rows_per_commit": round(rows / max(1, commits), 2),
        "commits_per_second": round(commits / seconds, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
