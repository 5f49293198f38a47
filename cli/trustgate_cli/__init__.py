"""The `trustgate` command line: request, approve and administer just-in-time access to IAM roles."""

from importlib import metadata

try:
    __version__ = metadata.version("trustgate-cli")
except metadata.PackageNotFoundError:  # run from a source tree without `pip install ./cli`
    __version__ = "dev"
