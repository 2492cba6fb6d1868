"""newsdedup: paragraph-level deduplication of news text, in-process.

The same engine as the ``newsdedup`` command, compiled into this package:

* :func:`clean_text` cleans one document on its own, exactly like
  ``newsdedup clean FILE``;
* :class:`Deduper` cleans a stream of documents in corpus order (the order of
  the calls): a paragraph seen in an earlier document is dropped.
  ``clean_batch`` does a list at once on all cores with the GIL released;
  ``index=PATH, batch=NAME`` reads and commits the CLI's persistent index
  as a run of that batch (``--index PATH --batch NAME``: a rerun of a batch
  is a retry and keeps what the batch kept);
* :mod:`newsdedup.datatrove` holds datatrove pipeline steps (datatrove is an
  optional dependency);
* :mod:`newsdedup.spark` is the scale-out driver (console script
  ``newsdedup-spark``): the same result on Apache Spark or DuckDB.

Options take the CLI's flag values: ``split`` ("auto", "line", "blank"),
``quotes`` ("fold", "keep"), ``key`` ("exact", "loose"), ``min_chars``
(60: a repeat of another document shorter than this is dropped only in
context, see ``Paragraph.reason``), ``min_chars_within`` (20: the same for a
repeat within a document), ``scope`` ("corpus", "document"), ``emit`` ("normalized", "original"),
``encoding`` ("repair", "strict", "lossy"; it applies to documents given as
``bytes``, decoded like a file, and to ``str`` holding lone surrogates).

Errors are :class:`NewsdedupError` subclasses carrying ``path``, ``line``,
``offset`` and ``kind``.
"""

from ._core import CleanResult, Deduper, First, Paragraph, __version__, clean_text, read_text
from ._errors import (
    DecodeError,
    FileError,
    IndexCorruptError,
    IndexLockedError,
    NewsdedupError,
)


def clean_file(path, **options) -> str:
    """Reads ``path`` (decoded by ``encoding``) and cleans it like
    ``newsdedup clean FILE``; errors name the file. Takes the options of
    :func:`clean_text`."""
    encoding = options.get("encoding", "repair")
    return clean_text(read_text(path, encoding=encoding), **options)


__all__ = [
    "CleanResult",
    "DecodeError",
    "Deduper",
    "FileError",
    "First",
    "IndexCorruptError",
    "IndexLockedError",
    "NewsdedupError",
    "Paragraph",
    "__version__",
    "clean_file",
    "clean_text",
    "read_text",
]
