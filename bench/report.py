"""The bench's report: the table printed and written to ``var/bench.txt``, and the targets."""

from __future__ import annotations

from bench.decode_cost import decode_cost_targets, render_decode_cost
from bench.images import HTTP_IMAGE
from bench.lifecycle_bench import render_lifecycle
from bench.load import CONCURRENCIES, WARMUP_SECONDS
from bench.slowloris import render_slowloris

#: Timing goals, checked at the end of the report.
TARGET_MODEL_MEDIAN_MS = 2.0
TARGET_P99_MS = 50.0


def render(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Predicción de Dígitos — make bench, {m['date']}, git {m['git']}",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['memory_gib']} GiB, {m['os']}; load average at start "
        f"{' / '.join(str(x) for x in m['load_average_at_start'])}",
        f"Python {m['python']}, SQLite {m['sqlite']}, {m['wrk']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"Command: {report['command']}",
        "",
    ]
    if report.get("model_side"):
        lines += [
            "Model side, in process (decode + preprocess + predict, shipped clf.pickle)",
            f"  {'image':<28} {'bytes':>9} {'n':>6} {'median ms':>10} {'p99 ms':>8} "
            f"{'cpu median ms':>14}",
        ]
        for row in report["model_side"]:
            lines.append(
                f"  {row['image']:<28} {row['bytes']:>9} {row['n']:>6} "
                f"{row['median_ms']:>10.2f} {row['p99_ms']:>8.2f} {row['cpu_median_ms']:>14.2f}"
            )
        lines.append("")
    if report.get("http"):
        width, height, fmt, what = HTTP_IMAGE
        lines += [
            f"HTTP POST /predict/ under wrk, {report['duration']:g} s per run after a "
            f"{WARMUP_SECONDS} s warm-up; upload: {width}x{height} {fmt} ({what})"
            + (
                f"; best of {report['http'][0]['rounds']} rounds"
                if report["http"][0].get("rounds", 1) > 1
                else ""
            ),
            *(f"  {label}: {config}" for label, config in report["servers"].items()),
            f"  {'server':<44} {'conc':>4} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'errors':>6} {'cpu ms/req':>10} {'worker MiB':>10}",
        ]
        for row in report["http"]:
            rss = max(row["worker_rss_mib"], default=0)
            flag = "" if row["latency_consistent"] else "  (!)"
            lines.append(
                f"  {row['label'][:44]:<44} {row['concurrency']:>4} {row['rps']:>7.0f} "
                f"{row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} {row['errors']:>6} "
                f"{row['server_cpu_ms_per_request']:>10.2f} {rss:>10.0f}{flag}"
            )
        if not all(row["latency_consistent"] for row in report["http"]):
            lines.append(
                "  (!) wrk's latency histogram disagrees with its request count (mean latency"
                " > 1.5 x connections x duration / requests): re-run before trusting p50/p99"
            )
        lines.append(
            "  Closed loop: mean latency = concurrency / throughput (Little's law), so at c=32"
            " a p99 under 50 ms needs more than 640 req/s."
        )
        lines.append("")
        for row in report["http"]:
            if "logged" in row and row["concurrency"] == CONCURRENCIES[-1]:
                verdict = "every answered request logged" if row["log_complete"] else "MISMATCH"
                lines.append(
                    f"  prediction log of {row['label']}: {row['logged']} rows for "
                    f"{row['answered']} answered requests ({verdict})"
                )
        lines.append("")
        lines += ["Service / peer (req/s: higher is better; latency: lower is better)"]
        for ratio in report["ratios"]:
            lines.append(
                f"  {ratio['label'][:44]:<44} c={ratio['concurrency']:<3} req/s x"
                f"{ratio['rps']:.2f}   p50 x{ratio['p50']:.2f}   p99 x{ratio['p99']:.2f}"
            )
        lines.append("")
    drift = report.get("drift")
    lines.append("check_drift over logged predictions (bench/drift_bench.py)")
    if drift is None:
        lines.append("  not run")
    else:
        for result in drift["results"]:
            lines.append(
                f"  {result['rows']:,} rows on {result['backend']}: check {result['seconds']} s"
                f" (budget {'met' if result['within_budget'] else 'MISSED'}), peak RSS "
                f"{result['peak_rss_mib']} MiB, python heap peak "
                f"{result['tracemalloc_peak_mib']} MiB; rows written in "
                f"{result['insert_seconds']} s"
            )
        if "stderr_tail" in drift:
            lines.append(f"  drift_bench.py exited {drift['exit_code']}")
            lines += ["  " + line for line in drift["stderr_tail"]]
    lines.append("")
    if report.get("decode_cost"):
        lines += render_decode_cost(report["decode_cost"])
    if report.get("lifecycle"):
        lines += render_lifecycle(report["lifecycle"])
    if report.get("slowloris"):
        lines += [*render_slowloris(report["slowloris"]), ""]
    if report.get("targets"):
        lines.append("Targets (issues 8 and 21)")
        for target in report["targets"]:
            lines.append(f"  [{'met' if target['met'] else 'MISSED'}] {target['text']}")
    return "\n".join(lines) + "\n"


def targets(report: dict) -> list[dict]:
    out = []
    for row in report.get("model_side", []):
        if row["image"] == "640x480 JPEG":
            out.append(
                {
                    "text": f"model-side median for the 640x480 JPEG <= {TARGET_MODEL_MEDIAN_MS:g}"
                    f" ms (is {row['median_ms']:.2f} ms)",
                    "met": row["median_ms"] <= TARGET_MODEL_MEDIAN_MS,
                }
            )
    rows = {(r["server"], r["concurrency"]): r for r in report.get("http", [])}
    ours, peer = rows.get(("service", 32)), rows.get(("peer", 32))
    if ours and peer:
        out.append(
            {
                "text": f"c=32 throughput >= the peer's while logging every prediction "
                f"({ours['rps']:.0f} vs {peer['rps']:.0f} req/s)",
                "met": ours["rps"] >= peer["rps"] and ours.get("log_complete", False),
            }
        )
    if ours:
        out.append(
            {
                "text": f"c=32 p99 <= {TARGET_P99_MS:g} ms (is {ours['p99_ms']:.1f} ms)",
                "met": ours["p99_ms"] <= TARGET_P99_MS,
            }
        )
        service_errors = sum(r["errors"] for r in report["http"] if r["server"] == "service")
        out.append({"text": f"zero errors (service: {service_errors})", "met": not service_errors})
    if report.get("decode_cost"):
        out += decode_cost_targets(report["decode_cost"])
    return out
