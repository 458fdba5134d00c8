"""genseal core: the version and the one exception tree shared by every package."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("genseal")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
