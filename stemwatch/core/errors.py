"""Exception types shared by every component.

Every error a user can cause derives from :class:`StemwatchError`; the command line turns
it into one line on stderr and a non-zero exit, so its message must name the file or field,
the bad value and the fix.
"""

from typing import Literal

from stemwatch.core.paths import printable


class StemwatchError(Exception):
    """Base of all errors a user can cause and fix."""


class ConfigError(StemwatchError):
    """A configuration file is missing, malformed or invalid."""


ReadFailure = Literal["transient", "incomplete", "permanent"]


class ImageReadError(StemwatchError):
    """An image file is truncated, corrupt, empty, unreadable or of an unsupported kind.

    ``failure`` says what retrying can do: ``transient`` (the file could not be read: denied,
    an I/O error, a share gone for a while; read it again later, however often),
    ``incomplete`` (the content is cut off or malformed, as while it is still being written;
    read it again a few times, then it counts as corrupt until the file changes) or
    ``permanent`` (the content is readable but can never be analysed as it is: too large,
    too small, not an image; only a new version of the file can change that).
    """

    def __init__(self, path: object, reason: str, *, failure: ReadFailure = "incomplete") -> None:
        self.path = printable(path)
        self.reason = reason
        self.failure: ReadFailure = failure
        super().__init__(f"{self.path}: {reason}")


class ModelMetadataError(StemwatchError):
    """A model file is not ONNX or lacks the stemwatch metadata."""


class PlateMetadataError(StemwatchError):
    """Plate, well, field or time point cannot be resolved for an image."""
