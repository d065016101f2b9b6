"""Typed errors: every failure a user can cause or meet has one, with a message they can act on."""


class MinibinderError(Exception):
    """Base class; `str(error)` is a one-line message meant for the person who caused it."""


class ConfigError(MinibinderError):
    """A setting is missing, malformed or out of range; the message names the key."""


class SpecError(MinibinderError):
    """A `<provider>/<spec>` or clone URL that cannot be understood or is not allowed."""


class ResolveError(MinibinderError):
    """A ref could not be resolved to a commit (unknown ref, unreachable repository)."""


class FetchError(MinibinderError):
    """Cloning the repository failed (timeout, size cap, network)."""


class BuildpackError(MinibinderError):
    """The repository's configuration files cannot be turned into a Dockerfile."""


class BuildError(MinibinderError):
    """Docker could not build the image; the message names the step and ends with the log tail."""


class DockerUnavailable(MinibinderError):
    """The Docker daemon does not answer."""


class LaunchError(MinibinderError):
    """A session could not be started or did not become ready."""


class QuotaExceeded(MinibinderError):
    """A launch was refused because a limit is reached; `retry_after` says when to try again."""

    def __init__(self, message: str, retry_after: int = 30):
        super().__init__(message)
        self.retry_after = retry_after
