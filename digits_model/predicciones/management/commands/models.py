"""List registered model versions, which one is live, and the traffic split."""

from predicciones.management.base import OperatorCommand
from predicciones.selectors import model_get, model_version_list


class Command(OperatorCommand):
    help = "List model versions with their stage, traffic share, sha256 and metrics."

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
        self.stdout.write(
            f"{'model':<16} {'ver':>4} {'stage':<10} {'traffic':>7}  {'val acc':>7}  "
            f"{'sha256':<14} created_by"
        )
        for row in rows:
            accuracy = row["metrics"].get("validation", {}).get("accuracy")
            accuracy = f"{accuracy:.4f}" if isinstance(accuracy, float) else "-"
            self.stdout.write(
                f"{row['model']:<16} {row['version']:>4} {row['stage']:<10} "
                f"{row['traffic_percent']:>6}%  {accuracy:>7}  {row['sha256'][:12]:<14} "
                f"{row['created_by']}"
            )
