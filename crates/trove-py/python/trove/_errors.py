"""The exceptions trove raises: one tree under `trove.Error`, each carrying the CLI's one-line message.

The native module raises these by name (`trove._trove` maps the library's error kinds here, in one place).
"""

from __future__ import annotations


class Error(Exception):
    """Anything trove fails with. `str(e)` is the message the CLI prints (its first line says what and where)."""


class NotFound(Error, KeyError):
    """A dataset, object or project that does not exist (also a `KeyError`, as `store["lab/x"]` suggests)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreNotFound(NotFound):
    """No store at the path given, nor at `$TROVE_STORE`, nor above the current folder."""


class Conflict(Error):
    """Something already exists where it was to be made (a store, a dataset, a project)."""


class InvalidName(Error, ValueError):
    """A project, path, object name, tag or reference that breaks trove's naming rules."""


class InvalidInput(Error, ValueError):
    """Metadata, an edit or other input that trove refuses (an integer past 64 bits, a key with a dot, ...)."""


class FilterError(Error, ValueError):
    """A filter that does not parse; `column` is the 1-based column of a text filter (None for a dict)."""

    column: int | None = None


class IntegrityError(Error):
    """Stored bytes that no longer match their checksum."""


class StorageError(Error, OSError):
    """The disk or the object store failed (no space, no permission, an I/O error)."""
