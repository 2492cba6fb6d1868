"""Exceptions raised by newsdedup. Each carries what the Rust error carries:
``path`` (a file, an index folder, or the id of an in-memory document),
``line``, ``offset`` (a byte offset) and ``kind`` (the CLI report's name for
the error: ``not-found``, ``encoding``, ``binary``, ``index-locked``, ...)."""

from typing import Optional


class NewsdedupError(Exception):
    """Base class of newsdedup's errors."""

    def __init__(
        self,
        message: str,
        *,
        path: Optional[str] = None,
        line: Optional[int] = None,
        offset: Optional[int] = None,
        kind: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.offset = offset
        self.kind = kind


class DecodeError(NewsdedupError, ValueError):
    """Bytes that are not text under the encoding policy (``encoding="strict"``),
    or a binary document (a NUL byte). ``offset`` is the byte offset of the first
    bad byte."""


class FileError(NewsdedupError, OSError):
    """A file or index folder could not be read or written."""


class IndexLockedError(NewsdedupError):
    """Another process (or another Deduper) holds the persistent index."""


class IndexCorruptError(NewsdedupError):
    """An index file fails its checks, is not an index file, or has an
    unsupported format version."""
