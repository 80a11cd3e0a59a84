"""Credentials never reach what this process prints (issue 27): MLflow writes its tracking URI,
password included, in "View run at:" links, error messages and tracebacks. Kept free of heavy
imports: the CLI installs the guard before any command runs."""

from __future__ import annotations

import sys
import traceback
from types import TracebackType
from typing import Any, TextIO

from lowlight.errors import scrub


class ScrubbedStream:
    """A text stream that writes ``scrub``-bed lines to ``inner``: MLflow prints its tracking
    URI (password included) in run links, errors and tracebacks, through ``sys.stdout`` and
    ``sys.stderr``. Whole lines are scrubbed, so a URL split over writes is still caught; a
    partial line (a progress bar) goes out on ``flush``."""

    def __init__(self, inner: TextIO):
        self.inner, self.pending = inner, ""

    def write(self, text: str) -> int:
        self.pending += text
        cut = max(self.pending.rfind("\n"), self.pending.rfind("\r")) + 1
        if cut:
            self.inner.write(scrub(self.pending[:cut]))
            self.pending = self.pending[cut:]
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.inner.write(scrub(self.pending))
            self.pending = ""
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, buffer ...
        return getattr(self.inner, name)


def _scrubbed_excepthook(
    kind: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """Uncaught tracebacks, their chained causes' messages included, without credentials."""
    sys.stderr.write(scrub("".join(traceback.format_exception(kind, exc, tb))))
    sys.stderr.flush()


def guard_output() -> None:
    """Scrub credentials from everything this process prints from now on: ``sys.stdout``,
    ``sys.stderr`` (logging, MLflow, rich and tqdm write there) and uncaught tracebacks.
    Idempotent; a stream swapped in later (a test runner's capture) is wrapped again."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, ScrubbedStream):
            setattr(sys, name, ScrubbedStream(stream))
    sys.excepthook = _scrubbed_excepthook
