"""Registry and log reads, in the shapes the API and the commands print."""

from __future__ import annotations

from .models import Deployment, ModelVersion


def model_version_list(*, name: str | None = None) -> list[dict]:
    """Every registered version with its rollout state, ordered by model and version.

    ``live`` is true for the version answering routed traffic; ``candidate_percent`` is the
    share a candidate gets (0 for everything else, and for a blue/green standby);
    ``traffic_percent`` is the share of routed requests each version answers.
    """
    deployments = {d.model_id: d for d in Deployment.objects.all()}
    versions = ModelVersion.objects.select_related("model", "parent").order_by(
        "model__name", "version"
    )
    if name is not None:
        versions = versions.filter(model__name=name)
    rows = []
    for v in versions:
        dep = deployments.get(v.model_id)
        live = dep is not None and dep.live_id == v.pk
        candidate = dep is not None and dep.candidate_id == v.pk
        candidate_percent = dep.candidate_percent if candidate else 0
        if live:
            stage = "live"
            traffic = 100 - (dep.candidate_percent if dep.candidate_id else 0)
        elif candidate:
            stage, traffic = "candidate", candidate_percent
        elif dep is not None and dep.previous_live_id == v.pk:
            stage, traffic = "previous", 0
        else:
            stage, traffic = "archived", 0
        rows.append(
            {
                "model": v.model.name,
                "version": v.version,
                "live": live,
                "stage": stage,
                "candidate_percent": candidate_percent,
                "traffic_percent": traffic,
                "sha256": v.sha256,
                "metrics": v.metrics,
                "sklearn_version": v.sklearn_version,
                "training_data": v.training_data,
                "parent_version": v.parent.version if v.parent else None,
                "created_by": v.created_by,
                "created_at": v.created_at.isoformat(),
            }
        )
    return rows
