"""The exceptions trove raises: one tree under `trove.Error`, each carrying the CLI's one-line message.

The native module raises these by name (`trove._trove` maps the library's error kinds here, in one place).
"""

from __future__ import annotations


class Error(Exception):
    """Anything trove fails with. `str(e)` is the message the CLI prints (its first line says what and where).

    >>> try: s["lab/nope"]   # doctest: +SKIP
    ... except trove.Error as e: print(e)
    """


class NotFound(Error, KeyError):
    """A dataset, object or project that does not exist (also a `KeyError`, as `store["lab/x"]` suggests).

    >>> try: s["lab/nope"]   # doctest: +SKIP
    ... except trove.NotFound: pass          # also a KeyError
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreNotFound(NotFound):
    """No store at the path given, nor at `$TROVE_STORE`, nor above the current folder.

    >>> try: trove.open("/not/a/store")   # doctest: +SKIP
    ... except trove.StoreNotFound: pass
    """


class Conflict(Error):
    """Something already exists where it was to be made (a store, a dataset, a project).

    >>> try: trove.init(s.root)   # doctest: +SKIP
    ... except trove.Conflict: pass          # already a store
    """


class InvalidName(Error, ValueError):
    """A project, path, object name, tag or reference that breaks trove's naming rules.

    >>> try: lab.put("runs/a:b")   # doctest: +SKIP
    ... except trove.InvalidName: pass
    """


class InvalidInput(Error, ValueError):
    """Metadata, an edit or other input that trove refuses (an integer past 64 bits, a key with a dot, ...).

    >>> try: lab.put("r", metadata={"seed": 2**64})   # doctest: +SKIP
    ... except trove.InvalidInput: pass
    """


class FilterError(Error, ValueError):
    """A filter that does not parse; `column` is the 1-based column of a text filter (None for a dict).

    >>> try: s.find("temperature >= ")   # doctest: +SKIP
    ... except trove.FilterError as e: print(e.column)
    """

    column: int | None = None


class IntegrityError(Error):
    """Stored bytes that no longer match their checksum.

    >>> try: analyse(s["lab/runs/r17"])   # doctest: +SKIP
    ... except trove.IntegrityError as e: print("damaged:", e)
    """


class StorageError(Error, OSError):
    """The disk or the object store failed (no space, no permission, an I/O error).

    >>> try: lab.put("r", "missing.csv")   # doctest: +SKIP
    ... except trove.StorageError: pass   # also an OSError
    """
