"""Per-process routing: which loaded classifier answers a request.

Each worker keeps an immutable snapshot of every model's deployment (live version,
candidate, share) and re-reads it at most every ``DIGITS_ROUTING_TTL`` seconds, so a
promote or rollback reaches every gunicorn worker within about a second, without a
restart. New versions are loaded (sha256 first) before the snapshot that routes to them
is swapped in; a version that fails to load is never routed to, and the last good
snapshot keeps serving.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from . import storage
from .exceptions import DatabaseUnavailableError, NoLiveModelError, UnknownModelError
from .ml.classifier import ArtifactIntegrityError, load_classifier, predict
from .models import Deployment, ModelVersion, is_valid_model_name

logger = logging.getLogger(__name__)

#: Pinned versions (``name:version``) kept loaded besides the routed ones.
PINNED_CACHE_SIZE = 8

#: The version part of a pinned reference: 1 to 9 ASCII digits.
VERSION_RE = re.compile(r"[0-9]{1,9}")

#: The step a router runs once when it finds no deployment at all (registering the shipped
#: model). ``PrediccionesConfig.ready`` hands it over, so this module never imports services.
_bootstrap: Callable[[], object] | None = None


def set_bootstrap(step: Callable[[], object] | None) -> None:
    """Give every router created from now on the step that fills an empty registry."""
    global _bootstrap
    _bootstrap = step


@dataclass(frozen=True)
class LoadedVersion:
    """A classifier in memory with the registry row it came from."""

    pk: int
    model_name: str
    version: int
    sha256: str
    clf: object = field(repr=False, compare=False)


@dataclass(frozen=True)
class Route:
    live: LoadedVersion
    candidate: LoadedVersion | None = None
    candidate_percent: int = 0

    def choose(self, query_id: uuid.UUID) -> LoadedVersion:
        """Canary choice: stable for a query id, ``candidate_percent`` % of ids overall."""
        if self.candidate is not None and canary_bucket(query_id) < self.candidate_percent:
            return self.candidate
        return self.live


def canary_bucket(query_id: uuid.UUID) -> int:
    """The 0..99 bucket a query id falls in; ids below the candidate share go to it."""
    return query_id.int % 100


class Router:
    """Snapshot of deployments plus a cache of loaded classifiers, refreshed on a TTL.

    A request may pin a version (``clf.pickle:3``) only while that version is its model's
    live, candidate or previous one (one rollback away): those are what an operator serves
    or may serve again. An archived version or one never rolled out (a retrained candidate
    held back, say) is not served, pinned or not: it is a 404, and a client cannot make a
    worker fetch and unpickle it. To try such a version without sending it traffic, make it
    a blue/green standby (``canary <name> <version> --percent 0``) and pin it.
    """

    def __init__(self, ttl: float | None = None, bootstrap: Callable[[], object] | None = None):
        self.ttl = settings.DIGITS_ROUTING_TTL if ttl is None else ttl
        self._bootstrap = _bootstrap if bootstrap is None else bootstrap
        #: Held while the deployments are re-read and new versions loaded (one thread at a
        #: time; the others keep answering from the current snapshot meanwhile).
        self._refresh_lock = threading.Lock()
        #: Held for the pinned cache's bookkeeping only, never while loading.
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._loaded: dict[int, LoadedVersion] = {}
        #: Per model, the versions that may be pinned (number -> registry row).
        self._pinnable: dict[str, dict[int, ModelVersion]] = {}
        self._pinned: OrderedDict[int, LoadedVersion] = OrderedDict()
        #: One lock per version being loaded for a pin: the load (a download and an unpickle)
        #: runs outside ``_lock``, and two requests for the same version load it once.
        self._loading: dict[int, threading.Lock] = {}
        self._checked_at = float("-inf")
        #: The last read of the deployments failed (the database is down, or unreadable).
        self.database_failing = False

    # -- public -----------------------------------------------------------------------------
    def resolve(self, model_ref: str | None, query_id: uuid.UUID) -> LoadedVersion:
        """Pick the version that answers ``model_ref`` (``name`` or ``name:version``)."""
        name, pinned = parse_model_ref(model_ref or settings.DIGITS_DEFAULT_MODEL)
        routes = self.routes()
        if pinned is not None:
            return self._pinned_version(name, pinned)
        route = routes.get(name)
        if route is None:
            if self.database_failing:
                # Nothing could be read, not "nothing is registered": say what is wrong.
                raise DatabaseUnavailableError()
            if name == settings.DIGITS_DEFAULT_MODEL:
                raise NoLiveModelError()
            raise UnknownModelError(_unknown_message(name, routes))
        return route.choose(query_id)

    def routes(self) -> dict[str, Route]:
        # Only the first snapshot is waited for; later, while one thread refreshes (and perhaps
        # loads a new version for a second), the others use the current one.
        if time.monotonic() - self._checked_at >= self.ttl and self._refresh_lock.acquire(
            blocking=not self._routes
        ):
            try:
                if time.monotonic() - self._checked_at >= self.ttl:
                    self._refresh()
            finally:
                self._refresh_lock.release()
        return self._routes

    def invalidate(self) -> None:
        """Re-read the deployments on the next request (used after a local change)."""
        self._checked_at = float("-inf")

    def loaded_versions(self) -> list[LoadedVersion]:
        return list(self._loaded.values())

    # -- internals --------------------------------------------------------------------------
    def _refresh(self) -> None:
        try:
            deployments = list(_DEPLOYMENTS.all())
            if not deployments and self._bootstrap is not None:
                bootstrap, self._bootstrap = self._bootstrap, None
                bootstrap()
                deployments = list(_DEPLOYMENTS.all())
        except Exception:
            # Database unreachable: keep serving from the last snapshot, try again later.
            logger.exception("could not read deployments; keeping the previous routing")
            self.database_failing = True
            self._checked_at = time.monotonic()
            return
        self.database_failing = False
        routes: dict[str, Route] = {}
        loaded: dict[int, LoadedVersion] = {}
        pinnable: dict[str, dict[int, ModelVersion]] = {}
        for dep in deployments:
            name = dep.model.name
            pinnable[name] = {
                row.version: row for row in (dep.previous_live, dep.candidate, dep.live) if row
            }
            live = self._load(dep.live, loaded)
            if live is None:
                previous = self._routes.get(name)
                if previous is not None:
                    routes[name] = previous
                    loaded[previous.live.pk] = previous.live
                continue
            candidate = self._load(dep.candidate, loaded) if dep.candidate_id else None
            routes[name] = Route(
                live=live,
                candidate=candidate,
                candidate_percent=dep.candidate_percent if candidate else 0,
            )
        self._loaded = loaded
        self._routes = routes
        self._pinnable = pinnable
        self._checked_at = time.monotonic()

    def _load(self, row: ModelVersion, into: dict[int, LoadedVersion]) -> LoadedVersion | None:
        cached = self._loaded.get(row.pk) or into.get(row.pk) or self._pinned.get(row.pk)
        if cached is None:
            try:
                cached = load_version(row)
            except Exception as exc:  # a bad artifact must never take routing down
                logger.error("refusing to route to %s: %s", row, exc)
                return None
        into[row.pk] = cached
        return cached

    def _pinned_version(self, name: str, number: int) -> LoadedVersion:
        for version in self._loaded.values():
            if version.model_name == name and version.version == number:
                return version
        row = self._pinnable.get(name, {}).get(number)
        if row is None:
            raise UnknownModelError(
                f"{name}:{number} is not served: only a model's live, candidate and previous "
                "versions can be pinned (see GET /models/)."
            )
        with self._lock:
            loaded = self._cached_pin(row.pk)
            if loaded is not None:
                return loaded
            loading = self._loading.setdefault(row.pk, threading.Lock())
        try:
            with loading:
                with self._lock:
                    loaded = self._cached_pin(row.pk)
                if loaded is None:
                    loaded = self._load_pin(row)
        finally:
            with self._lock:
                self._loading.pop(row.pk, None)
        return loaded

    def _load_pin(self, row: ModelVersion) -> LoadedVersion:
        try:
            loaded = load_version(row)
        except (ArtifactIntegrityError, storage.StoreError) as exc:
            logger.error("refusing to load pinned %s: %s", row, exc)
            raise NoLiveModelError(f"{row} cannot be loaded right now.") from exc
        with self._lock:
            self._pinned[row.pk] = loaded
            while len(self._pinned) > PINNED_CACHE_SIZE:
                self._pinned.popitem(last=False)
        return loaded

    def _cached_pin(self, pk: int) -> LoadedVersion | None:
        """A pinned version already loaded (callers hold ``_lock``)."""
        loaded = self._pinned.get(pk)
        if loaded is not None:
            self._pinned.move_to_end(pk)
        return loaded


_DEPLOYMENTS = Deployment.objects.select_related(
    "model", "live__model", "candidate__model", "previous_live__model"
)


def load_version(row: ModelVersion) -> LoadedVersion:
    """Fetch a version's artifact from the store and unpickle it after its sha256 matches."""
    data = storage.get_store().get_bytes(row.artifact_key)
    clf = load_classifier(data, sha256=row.sha256)
    logger.info("loaded %s (sha256 %s...)", row, row.sha256[:12])
    return LoadedVersion(
        pk=row.pk, model_name=row.model.name, version=row.version, sha256=row.sha256, clf=clf
    )


def parse_model_ref(ref: str) -> tuple[str, int | None]:
    """``"clf.pickle"`` -> ("clf.pickle", None); ``"clf.pickle:3"`` -> ("clf.pickle", 3).

    Anything else is an unknown model; the text is never used as a path.
    """
    if not isinstance(ref, str) or len(ref) > 120:
        raise UnknownModelError("Unknown model.")
    name, sep, number = ref.partition(":")
    if not is_valid_model_name(name):
        raise UnknownModelError("Unknown model: see GET /models/ for the registered names.")
    if not sep:
        return name, None
    # ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() refuses or reads.
    if not VERSION_RE.fullmatch(number):
        raise UnknownModelError(f"Unknown model version: {name}:{number[:20]!r}.")
    return name, int(number)


def _unknown_message(name: str, routes: dict[str, Route]) -> str:
    known = ", ".join(sorted(routes)) or "none"
    return f"Unknown model {name!r}. Registered models: {known}."


_router: Router | None = None
_router_lock = threading.Lock()


def get_router() -> Router:
    """The process-wide router (created lazily, after gunicorn forks its workers)."""
    global _router
    if _router is None:
        with _router_lock:
            if _router is None:
                _router = Router()
    return _router


def warm_up() -> None:
    """Load every routed version and run the model path once, before a worker takes requests.

    Otherwise the first request a new worker answers waits for the artifact to be fetched,
    checked and unpickled and for the imaging code's lazy imports: about a second on a
    loaded 2-core machine, after every deploy, ``max_requests`` recycle or replacement of a
    crashed worker. Failures are logged, never raised: the worker still starts, and loads
    each version on its first request instead.
    """
    import io

    from PIL import Image, ImageDraw

    from .ml.preprocessing import preprocess

    try:
        routes = get_router().routes()
        img = Image.new("L", (64, 64), 230)
        ImageDraw.Draw(img).line([(20, 12), (44, 12), (28, 52)], fill=20, width=5)
        buffer = io.BytesIO()
        img.save(buffer, format="PNG")
        features = preprocess(buffer.getvalue()).features
        for route in routes.values():
            for version in filter(None, (route.live, route.candidate)):
                predict(version.clf, features)
    except Exception:
        logger.exception("warm-up failed; versions will load on the first request")


def reset_router() -> None:
    """Forget the process's router (tests, and after settings change)."""
    global _router
    with _router_lock:
        _router = None
