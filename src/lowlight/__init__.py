"""lowlight: learning to see in the dark, as a reproducible pipeline."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lowlight")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
