"""Train the digit classifier on the base handwriting (MNIST, optdigits, load_digits).

Deterministic: the same seed gives the same pickle bytes.

Without ``--register`` it (re)writes the shipped artifact ``model/clf.pickle`` with its
manifest and training statistics beside it. With ``--register`` it adds a new, not-live
version of the default model to the registry and artifact store instead, and leaves the
shipped files alone.
"""

import json
import platform

import numpy as np
import sklearn
from django.conf import settings

from predicciones.exceptions import OperatorError
from predicciones.management.base import OperatorCommand, positive_int, random_seed
from predicciones.ml.classifier import dump_classifier, sha256_bytes
from predicciones.ml.splits import BASE_DESCRIPTION
from predicciones.ml.training import train_baseline, train_classifier, validation_metrics
from predicciones.services.registry import model_version_register


class Command(OperatorCommand):
    help = "Train the classifier; write model/clf.pickle, or --register a new version."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=random_seed, default=0, help="Random seed (default 0).")
        parser.add_argument(
            "--jobs",
            type=positive_int,
            default=2,
            help="Processes rendering the training images (default 2; the result is the same).",
        )
        parser.add_argument(
            "--register",
            action="store_true",
            help="Register as a new (not live) version instead of writing model/clf.pickle.",
        )
        parser.add_argument(
            "--quick",
            action="store_true",
            help="With --register: one base digit in 30 and one distortion each instead of the "
            "full set (a cheap model for tests and demonstrations; the shipped model is always "
            "fully trained).",
        )

    def handle(self, *args, seed, jobs, register, quick, verbosity, **options):
        if quick and not register:
            raise OperatorError("--quick is only for --register: model/clf.pickle is fully trained")
        if quick:
            clf, statistics = train_classifier(seed=seed, quick=True, n_jobs=jobs)
            metrics = {"validation": validation_metrics(clf, n_jobs=jobs), "quick": True}
            metrics.update(seed=seed, sklearn_version=sklearn.__version__)
        else:
            clf, metrics, statistics = train_baseline(seed=seed, n_jobs=jobs)
        artifact = dump_classifier(clf)
        training_data = {
            "base": BASE_DESCRIPTION,
            "n_samples": statistics["n_samples"],
        }
        if register:
            version = model_version_register(
                name=settings.DIGITS_DEFAULT_MODEL,
                artifact=artifact,
                statistics=statistics,
                metrics=metrics,
                sklearn_version=sklearn.__version__,
                training_data=training_data,
                created_by=f"train_model --register --seed {seed}" + (" --quick" if quick else ""),
            )
            self.stdout.write(self.style.SUCCESS(f"registered {version} (not live)"))
            return
        path = settings.DIGITS_SHIPPED_MODEL_PATH
        manifest = {
            "model": settings.DIGITS_DEFAULT_MODEL,
            "artifact": path.name,
            "sha256": sha256_bytes(artifact),
            "sklearn_version": sklearn.__version__,
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "seed": seed,
            "metrics": metrics,
            "training_data": training_data,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(artifact)
        path.with_suffix(".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        path.with_suffix(".stats.json").write_text(json.dumps(statistics) + "\n")
        split = metrics["sklearn_example_split"]["accuracy"]
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {path} (sha256 {manifest['sha256'][:12]}..., "
                f"sklearn example split accuracy {split:.4f})"
            )
        )
