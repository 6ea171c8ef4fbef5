"""The one exception the dataset tools raise for bad input."""

from ..errors import SignSeekError


class DatasetError(SignSeekError, ValueError):
    """Input a dataset tool cannot use; the message names the file or value to fix."""
    code = "invalid_dataset"
