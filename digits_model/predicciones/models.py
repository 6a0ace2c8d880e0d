"""Database tables: the model registry, each model's deployment, and the prediction log."""

import re
import uuid

from django.db import models

#: A model name: 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit. It
#: is part of its versions' keys in the store, so it must never read as a path.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def is_valid_model_name(name) -> bool:
    """Whether ``name`` may name a registered model (see :data:`MODEL_NAME_RE`)."""
    return isinstance(name, str) and bool(MODEL_NAME_RE.match(name)) and ".." not in name


class RegisteredModel(models.Model):
    """A named model (``clf.pickle``) that clients ask for; it has numbered versions."""

    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ModelVersionQuerySet(models.QuerySet):
    def of_model(self, name: str):
        return self.filter(model__name=name)


class Stage(models.TextChoices):
    """Where a version stands in its model's rollout (derived, never stored)."""

    LIVE = "live", "answers the routed traffic"
    CANDIDATE = "candidate", "gets a canary share, or is warm at 0 % (blue/green)"
    PREVIOUS = "previous", "was live just before the live one: one rollback away"
    ARCHIVED = "archived", "was live once and has been replaced"
    REGISTERED = "registered", "has never been live and is not routed"


class ModelVersion(models.Model):
    """One immutable, numbered version: an artifact with its digest and what it was made from."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    artifact_key = models.CharField(max_length=255, help_text="Key of the pickle in the store.")
    stats_key = models.CharField(
        max_length=255, blank=True, help_text="Key of the training statistics in the store."
    )
    sklearn_version = models.CharField(max_length=32, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    training_data = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    created_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["model__name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="unique_model_version")
        ]

    def __str__(self):
        return f"{self.model.name}:{self.version}"

    @property
    def untrusted_feedback_rows(self) -> int:
        """Labels from untrusted sources this version was trained on (a version trained before
        sources were recorded: all its feedback rows). run_pipeline and canary_review do not
        roll such a version out by themselves (``DIGITS_ROLLOUT_UNTRUSTED_FEEDBACK``)."""
        data = self.training_data or {}
        return int(data.get("untrusted_feedback_rows", data.get("feedback_rows")) or 0)


class Deployment(models.Model):
    """Which version of a model answers: one live version, optionally a candidate.

    ``candidate_percent`` is the candidate's share of routed traffic: 1..99 for a canary,
    0 for a blue/green standby (loaded and warm, answering only pinned requests).
    """

    model = models.OneToOneField(
        RegisteredModel, on_delete=models.CASCADE, related_name="deployment"
    )
    live = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    previous_live = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    candidate = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    candidate_percent = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(candidate_percent__lte=99),
                name="candidate_percent_below_100",
            ),
            models.CheckConstraint(
                condition=models.Q(candidate__isnull=False) | models.Q(candidate_percent=0),
                name="no_share_without_candidate",
            ),
        ]

    def __str__(self):
        share = (
            f", candidate {self.candidate_id} at {self.candidate_percent}%"
            if self.candidate_id
            else ""
        )
        return f"deployment of {self.model_id}: live {self.live_id}{share}"


class DeploymentEvent(models.Model):
    """Audit trail of every registry and rollout action."""

    class Action(models.TextChoices):
        REGISTER = "register"
        CANARY = "canary"
        PROMOTE = "promote"
        ROLLBACK = "rollback"

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    previous_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    percent = models.PositiveSmallIntegerField(null=True, blank=True)
    actor = models.CharField(max_length=100, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.action} {self.version_id} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class Prediction(models.Model):
    """One answered request: what the model saw, what it said, and (later) the true label.

    ``features`` holds the 64 model inputs as 64 bytes (values 0..16), compact enough to
    aggregate millions of rows for drift checks.
    """

    query_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(db_index=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="predictions"
    )
    features = models.BinaryField()
    prediction = models.PositiveSmallIntegerField()
    confidence = models.FloatField()
    latency_ms = models.FloatField(help_text="Model-side time: decode, preprocess, predict.")
    image_sha256 = models.CharField(max_length=64)
    label = models.PositiveSmallIntegerField(null=True, blank=True)
    labelled_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Nullable (NULL: unknown, as for labels given before sources were recorded) so that adding
    # it is an instant ALTER TABLE on SQLite too, not a copy of the whole log.
    label_source = models.CharField(  # noqa: DJ001
        max_length=64,
        null=True,
        blank=True,
        help_text="Who gave the label: key:<API key id> or addr:<client address> (provenance).",
    )

    class Meta:
        indexes = [models.Index(fields=["model_version", "created_at"])]

    def __str__(self):
        return f"prediction {self.query_id}: {self.prediction}"


class PredictionFailure(models.Model):
    """A request that reached a model version and failed there (for canary error rates)."""

    query_id = models.UUIDField(primary_key=True)
    created_at = models.DateTimeField(db_index=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="failures"
    )
    error = models.CharField(max_length=200)

    def __str__(self):
        return f"failure {self.query_id} on {self.model_version_id}: {self.error}"


class RetrainRun(models.Model):
    """One attempt to retrain a model: what triggered it, what it found, what it did."""

    class Status(models.TextChoices):
        REGISTERED = "registered", "candidate passed the gate and was registered"
        REFUSED = "refused", "candidate trained but refused by the gate"
        SKIPPED = "skipped", "not attempted (cooldown, too few labels, dry run)"

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="retrains")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=32, default="manual")
    status = models.CharField(max_length=16, choices=Status.choices)
    reasons = models.JSONField(default=list, blank=True)
    live_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    candidate_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    seed = models.IntegerField(default=0)
    n_new_labels = models.PositiveIntegerField(default=0)
    n_feedback_train = models.PositiveIntegerField(default=0)
    n_feedback_validation = models.PositiveIntegerField(default=0)
    validation_set = models.CharField(max_length=32, blank=True)
    gate = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"retrain of {self.model_id} at {self.started_at:%Y-%m-%d %H:%M}: {self.status}"

    def as_dict(self) -> dict:
        """The run as ``retrain --json`` and ``run_pipeline --json`` print it."""
        return {
            "model": self.model.name,
            "status": self.status,
            "reasons": self.reasons,
            "trigger": self.trigger,
            "live_version": self.live_version.version if self.live_version else None,
            "candidate_version": (
                self.candidate_version.version if self.candidate_version else None
            ),
            "n_new_labels": self.n_new_labels,
            "n_feedback_train": self.n_feedback_train,
            "n_feedback_validation": self.n_feedback_validation,
            "validation_set": self.validation_set,
            "gate": self.gate,
            "started_at": self.started_at.isoformat(),
        }


class DriftReport(models.Model):
    """One ``check_drift`` run: the decision, the counts behind it, and the full document.

    The same document is in the artifact store under ``store_key``; a row exists only once
    that object was written (no partial reports).
    """

    class Status(models.TextChoices):
        OK = "ok"
        DRIFT = "drift"
        INSUFFICIENT_DATA = "insufficient_data"

    class Severity(models.TextChoices):
        NONE = "none"
        WARNING = "warning"
        CRITICAL = "critical"

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="drift_reports"
    )
    created_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    score = models.FloatField(null=True, blank=True, help_text="Mean normalised W1.")
    drifted_share = models.FloatField(null=True, blank=True)
    n_reference = models.PositiveIntegerField()
    n_current = models.PositiveIntegerField()
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    store_key = models.CharField(max_length=255)
    document = models.JSONField(help_text="The report as printed by check_drift --json.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model_version", "created_at"])]

    def __str__(self):
        return f"drift report {self.pk}: {self.status}/{self.severity} for {self.model_version_id}"


class PredictionHour(models.Model):
    """One closed hour of one version's prediction log: its summary, capture and retention.

    The summary (histograms, counts, exact confidence sum, latency buckets; see
    ``ml.summary``) covers exactly the rows in the hour's verified capture parts once
    ``captured_rows`` is set, so drift windows can read it instead of the rows. Retention
    deletes only rows whose query id is in a verified part, and counts them in
    ``deleted_rows`` in the same transaction as each batch.
    """

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="hours")
    hour = models.DateTimeField(help_text="Start of the hour (UTC).")
    n = models.PositiveBigIntegerField()
    value_counts = models.JSONField(help_text="64 x 17 feature histogram.")
    class_counts = models.JSONField(help_text="Predicted-class counts, digits 0..9.")
    confidence_units = models.CharField(
        max_length=40, help_text="Exact confidence sum, integer units of 2**-53."
    )
    latency_counts = models.JSONField(help_text="Model-side latency per ml.summary bucket.")
    labelled = models.PositiveBigIntegerField(default=0)
    correct = models.PositiveBigIntegerField(default=0)
    first_created_at = models.DateTimeField()
    last_created_at = models.DateTimeField()
    summarised_at = models.DateTimeField()
    summary_key = models.CharField(max_length=255)
    summary_stored = models.BooleanField(
        default=False, help_text="The store holds the JSON of this summary as it is now."
    )
    captured_rows = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Rows in the verified capture parts (None: not captured)."
    )
    captured_at = models.DateTimeField(null=True, blank=True)
    deleted_rows = models.PositiveBigIntegerField(default=0)
    pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model_version", "hour"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "hour"], name="unique_version_hour")
        ]

    def __str__(self):
        return f"{self.model_version_id} {self.hour:%Y-%m-%dT%H}: {self.n} rows"


class CapturePart(models.Model):
    """One verified gzip JSON Lines object of a captured hour (predictions, or labels).

    Recorded only after the object was written and read back with this digest and count.
    An hour has part 0, and a further part for any rows that reached the log after it was
    captured. Label parts have no model version (one partition per labelling hour).
    """

    class Kind(models.TextChoices):
        PREDICTIONS = "predictions"
        LABELS = "labels"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    hour = models.DateTimeField()
    part = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=255, unique=True)
    rows = models.PositiveBigIntegerField()
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    captured_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "hour", "model_version", "part"]
        indexes = [models.Index(fields=["kind", "hour"])]

    def __str__(self):
        return f"{self.key}: {self.rows} rows"


class LabelHour(models.Model):
    """An hour of labelling (by ``labelled_at``): summaries recounted, labels captured."""

    hour = models.DateTimeField(unique=True)
    counted_at = models.DateTimeField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["hour"]

    def __str__(self):
        return f"labels {self.hour:%Y-%m-%dT%H}"
