"""The bench's report: the table printed and written to ``var/bench.txt``, and the targets."""

from __future__ import annotations

from bench.decode_cost import decode_cost_targets, render_decode_cost
from bench.images import HTTP_IMAGES
from bench.lifecycle_bench import render_lifecycle
from bench.load import WARMUP_SECONDS
from bench.slowloris import render_slowloris

#: Timing goals, checked at the end of the report.
TARGET_MODEL_MEDIAN_MS = 2.0
TARGET_P99_MS = 50.0
#: p50 at c=1 against the service of the revision given as ``--before``, at most.
TARGET_C1_P50_BEFORE = 0.6
#: Issue 23's ratios at c=32: (peer, image, throughput at least, server CPU a request at most).
ISSUE_23_RATIOS = (
    ("peer", "640x480 JPEG", 1.2, 0.85),
    ("peer", "200 px JPEG", 1.2, 0.85),
    ("naive", "640x480 JPEG", 1.0, 1.0),
)


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
        first = report["http"][0]
        lines += [
            f"HTTP POST /predict/ under wrk, {report['duration']:g} s per run after a "
            f"{WARMUP_SECONDS} s warm-up; uploads: "
            + ", ".join(f"{name} ({w}x{h} {fmt})" for name, (w, h, fmt, _) in HTTP_IMAGES.items())
            + (f"; best of {first['rounds']} rounds" if first.get("rounds", 1) > 1 else ""),
            *(f"  {label}: {config}" for label, config in report["servers"].items()),
            f"  {'server':<44} {'image':<13} {'conc':>4} {'req/s':>7} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'errors':>6} {'cpu ms/req':>10} {'cores':>5} {'worker MiB':>10}",
        ]
        for row in report["http"]:
            rss = max(row["worker_rss_mib"], default=0)
            flag = "" if row["latency_consistent"] else "  (!)"
            lines.append(
                f"  {row['label'][:44]:<44} {row['image']:<13} {row['concurrency']:>4} "
                f"{row['rps']:>7.0f} {row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} "
                f"{row['errors']:>6} {row['server_cpu_ms_per_request']:>10.2f} "
                f"{row['cores_used']:>5.2f} {rss:>10.0f}{flag}"
            )
        if not all(row["latency_consistent"] for row in report["http"]):
            lines.append(
                "  (!) wrk's latency histogram disagrees with its request count (mean latency"
                " > 1.5 x connections x duration / requests): re-run before trusting p50/p99"
            )
        lines.append(
            "  cores: the server's CPU seconds a wall second (each server should keep every"
            " core it has busy at c=32). Closed loop: mean latency = concurrency / throughput."
        )
        lines.append("")
        logged = {}
        for row in report["http"]:
            if "logged" in row:
                logged[row["label"]] = row
        for label, row in logged.items():
            verdict = "every answered request logged" if row["log_complete"] else "MISMATCH"
            lines.append(
                f"  prediction log of {label}: {row['logged']} rows for "
                f"{row['answered']} answered requests ({verdict})"
            )
        lines.append("")
        lines += [
            "Service / peer (req/s: higher is better; latency and CPU a request: lower is better)"
        ]
        for ratio in report["ratios"]:
            lines.append(
                f"  {ratio['label'][:40]:<40} / {ratio['peer']:<5} {ratio['image']:<13} "
                f"c={ratio['concurrency']:<3} req/s x{ratio['rps']:.2f}  p50 x{ratio['p50']:.2f}"
                f"  p99 x{ratio['p99']:.2f}  cpu x{ratio['cpu']:.2f}"
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
        lines.append("Targets (issues 8, 21 and 23)")
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
    rows = {(r["server"], r["image"], r["concurrency"]): r for r in report.get("http", [])}
    ratio = {
        (r["server"], r["peer"], r["image"], r["concurrency"]): r for r in report.get("ratios", [])
    }
    for peer, image, rps_at_least, cpu_at_most in ISSUE_23_RATIOS:
        found = ratio.get(("service", peer, image, 32))
        if found is None:
            continue
        out.append(
            {
                "text": f"{image}, c=32, against the {peer}: throughput >= x{rps_at_least:g}"
                f" (is x{found['rps']:.2f}), server CPU a request <= x{cpu_at_most:g}"
                f" (is x{found['cpu']:.2f}), p99 <= x1 (is x{found['p99']:.2f})",
                "met": found["rps"] >= rps_at_least
                and found["cpu"] <= cpu_at_most
                and found["p99"] <= 1.0,
            }
        )
    for image in ("640x480 JPEG", "200 px JPEG"):
        found = ratio.get(("service", "before", image, 1))
        if found is not None:
            out.append(
                {
                    "text": f"{image}, c=1, against the service before: p50 <= x"
                    f"{TARGET_C1_P50_BEFORE:g} (is x{found['p50']:.2f})",
                    "met": found["p50"] <= TARGET_C1_P50_BEFORE,
                }
            )
    service_rows = [r for r in report.get("http", []) if r["server"].startswith("service")]
    if service_rows:
        complete = all(r.get("log_complete", False) for r in service_rows)
        out.append({"text": "every 200 of the service has its log row", "met": complete})
        ours = rows.get(("service", "200 px JPEG", 32))
        if ours:
            out.append(
                {
                    "text": f"c=32 p99 <= {TARGET_P99_MS:g} ms, 200 px JPEG (is "
                    f"{ours['p99_ms']:.1f} ms)",
                    "met": ours["p99_ms"] <= TARGET_P99_MS,
                }
            )
        service_errors = sum(r["errors"] for r in service_rows)
        out.append({"text": f"zero errors (service: {service_errors})", "met": not service_errors})
    if report.get("decode_cost"):
        out += decode_cost_targets(report["decode_cost"])
    return out
