"""Named errors raised deep down and turned into one line and an exit code at the CLI edge."""


class MnistEdgeError(Exception):
    """Base class. `exit_code`, as the CLI documents it: 1 runtime/device failure, 2 bad input."""

    exit_code = 2


class UsageError(MnistEdgeError):
    """An option value that cannot work (a malformed --roi, an unknown --source...)."""


class BadImageError(MnistEdgeError):
    """An image file that cannot be read, is too large, or is in a refused format."""


class BadModelError(MnistEdgeError):
    """A model file that is not a usable 10-class 28x28 TFLite classifier."""


class UnsupportedModelError(BadModelError):
    """A valid model that the chosen runtime cannot run (e.g. an op version it lacks)."""


class BadDataError(MnistEdgeError):
    """An IDX file that is corrupt, truncated, or not the MNIST data it claims to be."""


class DataNotFoundError(MnistEdgeError):
    """MNIST files are missing and could not be downloaded."""


class RuntimeNotFoundError(MnistEdgeError):
    """No TFLite interpreter (LiteRT or tflite-runtime) is installed."""

    exit_code = 1


class CameraError(MnistEdgeError):
    """A camera that is missing, busy, or stopped delivering frames."""

    exit_code = 1

