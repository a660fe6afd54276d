"""The one exception type the CLI turns into a single error line and a non-zero exit."""


class Lenet5Error(Exception):
    """A problem with the user's input or environment, explained in one line (no traceback)."""


class DataError(Lenet5Error, ValueError):
    """A dataset file is missing, malformed or fails its checksum."""


class CheckpointError(Lenet5Error, ValueError):
    """A checkpoint or weights file cannot be used."""


class ImageError(Lenet5Error, ValueError):
    """An image cannot be read or holds nothing to classify.

    ``reason`` says which, for callers that map it (the web server's HTTP codes): 'missing', 'empty',
    'too-large', 'not-an-image', 'corrupt' or 'no-digit'.
    """

    def __init__(self, message: str, reason: str = "no-digit") -> None:
        super().__init__(message)
        self.reason = reason
