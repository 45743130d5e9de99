"""Exception types shared by every component.

Every error a user can cause derives from :class:`StemwatchError`; the command line turns
it into one line on stderr and a non-zero exit, so its message must name the file or field,
the bad value and the fix.
"""


class StemwatchError(Exception):
    """Base of all errors a user can cause and fix."""


class ConfigError(StemwatchError):
    """A configuration file is missing, malformed or invalid."""


class ImageReadError(StemwatchError):
    """An image file is truncated, corrupt, empty or of an unsupported kind."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelMetadataError(StemwatchError):
    """A model file is not ONNX or lacks the stemwatch metadata."""


class PlateMetadataError(StemwatchError):
    """Plate, well, field or time point cannot be resolved for an image."""
