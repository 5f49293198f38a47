"""The `trustgate` command line: request, approve and administer just-in-time access to IAM roles."""

from importlib import metadata

try:
    __version__ = metadata.version("trustgate")
except metadata.PackageNotFoundError:  # run from a source tree without `pip install -e .`
    __version__ = "dev"
