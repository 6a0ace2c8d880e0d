"""Errors the service raises on purpose.

``predicciones.exception_handler`` maps each (and the image errors from ``ml.exceptions``)
to its HTTP status and stable ``code`` in one table, and answers them in the API's error
shape. Messages are written for the client and never echo uploaded bytes.
"""


class PrediccionesError(Exception):
    """Base class: a failure with a client-safe message."""

    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)


class OperatorError(PrediccionesError):
    """An option or setting an operator gave that the action cannot run with.

    Commands exit 2 with its one-line message; any other exception is a bug and keeps its
    traceback.
    """

    default_message = "An option or setting is out of range."


class UnknownModelError(PrediccionesError):
    """No registered model (or version) by that name."""

    default_message = "Unknown model."


class NoLiveModelError(PrediccionesError):
    """Nothing is loaded that could answer yet."""

    default_message = "No model version is loaded yet; try again shortly."


class DatabaseUnavailableError(PrediccionesError):
    """The database cannot be read or written, so nothing can be routed or logged."""

    default_message = "The database is unavailable; try again shortly."


class PredictionLogError(PrediccionesError):
    """The prediction could not be logged, so it is not answered (no 200 without its row)."""

    default_message = "The prediction could not be recorded; try again shortly."


class UploadTooLargeError(PrediccionesError):
    """An uploaded image file above ``DIGITS_MAX_UPLOAD_BYTES``."""

    default_message = "The upload is too large."


class DecodeBusyError(PrediccionesError):
    """This worker is decoding as many large images as it may at once; try again shortly."""

    default_message = (
        "The server is busy decoding other large images: try again in a moment, or send a "
        "smaller image."
    )
    #: Seconds for the Retry-After header.
    retry_after = 1


class UnknownQueryError(PrediccionesError):
    """No prediction was logged under that query id (or retention deleted it)."""

    default_message = "Unknown query_id: no prediction was logged under it."


class RegistryError(PrediccionesError):
    """A registry or rollout action that cannot be done in the current state."""

    default_message = "That registry action is not possible now."


class DeploymentChangedError(RegistryError):
    """A rollout decision no longer applies: the deployment changed after it was made."""

    default_message = "The deployment changed since the decision was made; nothing done."


class AdminDisabledError(PrediccionesError):
    """The admin API is off (no ``DIGITS_ADMIN_TOKEN``)."""

    default_message = "The admin API is disabled: set DIGITS_ADMIN_TOKEN to enable it."


class DriftCheckError(PrediccionesError):
    """A drift check cannot run: no live version, bad window, malformed log rows."""

    default_message = "The drift check cannot run now."


class WindowRowsDeletedError(DriftCheckError):
    """A window cuts an hour whose rows retention deleted: only its whole-hour summary is left."""


class MaintenanceError(PrediccionesError):
    """The log's lifecycle (summaries, capture, retention) cannot proceed as asked."""

    default_message = "Log maintenance cannot run now."


class CaptureMismatchError(MaintenanceError):
    """A captured object is missing, or its digest or row count is not what was recorded."""


class TrainingStatsUnavailableError(DriftCheckError):
    """A version's training statistics are missing from the store or malformed."""

    default_message = "The training statistics of this model version are unavailable."
