"""The one exception the dataset tools raise for bad input."""


class DatasetError(ValueError):
    """Input a dataset tool cannot use; the message names the file or value to fix."""
