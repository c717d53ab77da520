"""The project's exception types: each carries a one-line message naming the file or key at fault."""


class HumanSaliencyError(Exception):
    """Base class for errors a stage reports to the user as one line."""


class ParamsError(HumanSaliencyError):
    """A params file has an unknown key, a wrong type or an out-of-range value."""


class DataError(HumanSaliencyError):
    """An input file is missing, corrupt or inconsistent with its neighbours."""


class DownloadError(DataError):
    """A download failed, was truncated or does not match its checksum."""
