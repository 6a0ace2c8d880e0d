"""List registered model versions, which one is live, and the traffic split."""

from predicciones.management.base import OperatorCommand
from predicciones.selectors import model_get, model_version_list


class Command(OperatorCommand):
    help = "List model versions with their stage, traffic share, sha256 and accuracy."

    def add_arguments(self, parser):
        parser.add_argument("--model", help="Only this model.")
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")

    def handle(self, *args, model, json, **options):
        if model is not None:
            model_get(name=model)
        rows = model_version_list(name=model)
        if json:
            self.write_json(rows)
            return
        if not rows:
            self.stdout.write("no models registered yet (the server registers clf.pickle on start)")
            return
        self.stdout.write(render_versions(rows))


def render_versions(rows: list[dict]) -> str:
    """The versions as a table whose accuracy column compares (one set of rows for all), then
    each gate decision as a sentence (two figures measured on the same rows)."""
    lines = [
        f"{'model':<16} {'ver':>4} {'stage':<10} {'traffic':>7}  {'holdout acc':>11}  "
        f"{'sha256':<14} created_by"
    ]
    sizes = set()
    for row in rows:
        holdout = row["holdout"]
        accuracy = f"{holdout['accuracy']:.3f}" if holdout else "-"
        if holdout and holdout["n"]:
            sizes.add(holdout["n"])
        lines.append(
            f"{row['model']:<16} {row['version']:>4} {row['stage']:<10} "
            f"{row['traffic_percent']:>6}%  {accuracy:>11}  {row['sha256'][:12]:<14} "
            f"{row['created_by']}"
        )
    rows_text = " or ".join(str(n) for n in sorted(sizes)) or "no"
    lines += [
        "",
        "holdout acc: accuracy on the fixed validation holdout, base digits no model trains on "
        f"({rows_text} rows, the same for every version); '-': not scored there.",
    ]
    for row in rows:
        gate = row["gate"]
        if gate is None:
            continue
        against = f"v{gate['against_version']}" if gate["against_version"] else "the live version"
        lines.append(
            f"v{row['version']} passed the validation gate against {against} on the same "
            f"{gate['n']} rows (holdout plus held-out feedback, set {gate['set']}): "
            f"{gate['accuracy']:.3f} vs {gate['against_accuracy']:.3f}."
        )
    return "\n".join(lines)
