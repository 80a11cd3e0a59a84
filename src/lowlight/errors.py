"""One exception type per domain; the CLI turns any of them into one red line and exit code 1."""

import re

# user:password@ (or a token@) after a URL scheme: what a message must never show
# (a scheme starts where no scheme character stands before it: a long run of letters is tried
# once, not from each of its positions, so scrubbing stays linear in the text's length)
_CREDENTIALS = re.compile(r"(?<![a-zA-Z0-9+.-])(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def scrub(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***`` (MLflow's own error
    messages repeat the tracking URI, password included)."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def has_credentials(uri: str) -> bool:
    return bool(_CREDENTIALS.search(uri))


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


class OutputError(LowlightError):
    """An output location cannot be written, or is not the stage's to replace (it is the input,
    holds a user's files, or another run is writing it)."""
