"""Type stubs of the compiled extension (re-exported by ``newsdedup``)."""

import os
from typing import Iterable, List, Literal, Optional, Sequence, Tuple, Union

Text = Union[str, bytes, bytearray]
Split = Literal["auto", "line", "blank"]
Quotes = Literal["fold", "keep"]
Key = Literal["exact", "loose"]
Scope = Literal["corpus", "document"]
Emit = Literal["normalized", "original"]
Encoding = Literal["repair", "strict", "lossy"]
Reason = Literal["within-document", "across-documents", "same-source", "inside-repeated-block", "duplicate-document"]
Batch = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

__version__: str

def clean_text(
    text: Text,
    *,
    split: Split = "auto",
    quotes: Quotes = "fold",
    key: Key = "exact",
    min_chars: int = 60,
    min_chars_within: int = 20,
    emit: Emit = "normalized",
    encoding: Encoding = "repair",
) -> str:
    """Cleans one document on its own, exactly like ``newsdedup clean FILE``
    (its repeats within itself dropped; "" when nothing is kept). ``bytes`` are
    decoded like a file by ``encoding``; ``DecodeError`` under "strict"."""

def read_text(path: Union[str, os.PathLike], *, encoding: Encoding = "repair") -> str:
    """Reads and decodes a file as the CLI does; ``FileError``/``DecodeError``
    carry the path (and byte offset)."""

class First:
    """Where a repeated paragraph (or a duplicate document) first occurred.
    When an earlier run kept it (``in_index``), ``doc``, ``id`` and
    ``paragraph`` are None and ``batch`` names that run's batch."""

    @property
    def id(self) -> Optional[str]: ...
    @property
    def doc(self) -> Optional[int]: ...
    @property
    def paragraph(self) -> Optional[int]:
        """Paragraph index in that document (None for a duplicate document)."""
    @property
    def batch(self) -> Optional[str]:
        """The earlier batch that kept it (first occurrences in the index)."""
    @property
    def in_index(self) -> bool: ...

class Paragraph:
    """One paragraph: byte span (UTF-8) and code-point span in the input, the
    normalised text, and the verdict."""

    @property
    def index(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def char_start(self) -> int: ...
    @property
    def char_end(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def kept(self) -> bool: ...
    @property
    def spared(self) -> bool:
        """A short repeat that was kept (alone, not copied with its source)."""
    @property
    def reason(self) -> Optional[Reason]: ...
    @property
    def first(self) -> Optional[First]: ...

class CleanResult:
    """What ``Deduper.clean`` returns."""

    @property
    def text(self) -> str:
        """The clean text, what ``newsdedup clean`` writes ("" if nothing is kept)."""
    @property
    def id(self) -> Optional[str]: ...
    @property
    def doc(self) -> int:
        """Number of the document in the Deduper's corpus order."""
    @property
    def original(self) -> str: ...
    @property
    def paragraphs(self) -> List[Paragraph]: ...
    @property
    def kept(self) -> List[Paragraph]: ...
    @property
    def dropped(self) -> List[Paragraph]: ...
    @property
    def n_kept(self) -> int: ...
    @property
    def n_dropped(self) -> int: ...
    @property
    def is_empty(self) -> bool: ...
    @property
    def duplicate_of(self) -> Optional[First]: ...
    @property
    def removal_spans(self) -> List[Tuple[int, int, Reason]]:
        """``(start, end, reason)`` byte ranges to delete (the CLI's ``--annotate`` spans)."""

class Deduper:
    """A corpus-order deduper; the call order is the corpus order. With
    ``index`` (and the required ``batch``), the CLI's persistent index is read,
    locked and committed as a run of that batch (``--index PATH --batch
    NAME``); a Deduper of a batch the index holds is a retry and keeps what
    the batch kept. ``label`` (default: the batch name) is recorded with each
    commit."""

    def __init__(
        self,
        *,
        split: Split = "auto",
        quotes: Quotes = "fold",
        key: Key = "exact",
        min_chars: int = 60,
        min_chars_within: int = 20,
        scope: Scope = "corpus",
        emit: Emit = "normalized",
        encoding: Encoding = "repair",
        index: Optional[Union[str, os.PathLike]] = None,
        batch: Optional[Batch] = None,
        label: Optional[str] = None,
    ) -> None: ...
    def clean(self, text: Text, id: Optional[str] = None) -> CleanResult: ...
    def clean_batch(
        self, texts: Iterable[Text], ids: Optional[Sequence[Optional[str]]] = None
    ) -> List[CleanResult]: ...
    def signature(self, text: Text) -> bytes: ...
    def decide_signature(self, signature: bytes, id: Optional[str] = None) -> bytes: ...
    def apply_plan(self, text: Text, plan: bytes) -> str: ...
    def commit(self) -> int:
        """Adds the first occurrences decided since the last commit, atomically;
        returns the keys added (0, nothing recorded, for a retry with nothing new)."""
    def close(self) -> None: ...
    def __enter__(self) -> "Deduper": ...
    def __exit__(self, exc_type: object = None, exc: object = None, tb: object = None) -> bool: ...
    @property
    def documents(self) -> int: ...
    @property
    def distinct_keys(self) -> int: ...
    @property
    def index(self) -> Optional[str]: ...
    @property
    def index_open(self) -> bool: ...
    @property
    def is_retry(self) -> bool:
        """True when the index held a committed run of this batch at open (or last commit)."""

# Scale-out steps (newsdedup.spark drives them; README "Scale-out"). Each
# releases the GIL and returns a one-line JSON summary.

def plan(args: List[str]) -> str:
    """``newsdedup plan ARGS...``: ``args`` are the inputs and ``newsdedup clean``
    options plus ``--work DIR`` (and ``--shard-bytes N``); writes and returns
    the manifest (JSON)."""

def keys(work: Union[str, os.PathLike], rank: int) -> str:
    """Writes ``WORK/keys`` and ``WORK/docs`` parts of shard ``rank``;
    returns ``{"rank", "documents", "rows", "bytes"}``."""

def apply(work: Union[str, os.PathLike], rank: int, out: Union[str, os.PathLike]) -> str:
    """Cleans shard ``rank`` with its drop list into ``out``; writes its explain,
    rejects, report and new-keys parts; returns ``{"rank", "documents",
    "paragraphs_in", "paragraphs_kept", "bytes_in", "bytes_out", "new_keys"}``."""

def merge_report(
    work: Union[str, os.PathLike],
    report: Optional[Union[str, os.PathLike]] = None,
    explain: Optional[Union[str, os.PathLike]] = None,
    rejects: Optional[Union[str, os.PathLike]] = None,
) -> str:
    """Concatenates the shards' parts in rank order into the files given
    (atomically); returns the report (the JSON of ``newsdedup clean --report``)."""

def index_export(index: Union[str, os.PathLike], cluster: Union[str, os.PathLike]) -> str:
    """Converts a single-node index into a cluster index folder (same batches,
    names and anchors); returns a summary."""

def index_import(cluster: Union[str, os.PathLike], index: Union[str, os.PathLike]) -> str:
    """Converts a cluster index folder into a single-node index; returns a summary."""
