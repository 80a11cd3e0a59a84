"""One exception type per domain; the CLI turns any of them into one red line and exit code 1."""


class LowlightError(Exception):
    """An expected failure the user can act on (bad input, bad config, missing file)."""


class ConfigError(LowlightError):
    """params.yaml or a command-line override is invalid."""


class RawDecodeError(LowlightError):
    """A RAW file could not be read or decoded by LibRaw."""


class SidNameError(LowlightError):
    """A file name or list file line does not follow SID's conventions."""


class DatasetError(LowlightError):
    """A dataset folder or manifest is missing, empty or inconsistent."""
