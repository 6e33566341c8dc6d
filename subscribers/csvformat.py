"""Reading the CSV files people actually export: separator and encoding, bounded rows.

Spreadsheets write commas, semicolons (the European default) or tabs (Excel's "Unicode
text", which is also UTF-16 LE), in UTF-8 with or without a BOM, UTF-16 or Windows-1252.
:func:`detect` looks once at the head of the file; the person can override both on the
mapping step. :func:`open_rows` reads any size of file with bounded memory: a physical line
longer than :data:`MAX_LINE_CHARS` is skipped (never held whole), and lines with a NUL byte or
undecodable bytes are flagged, so the importer reports those rows instead of failing.

No Flask or SQLAlchemy here: the import's helper process imports this module.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
DELIMITER_BY_NAME = {name: delimiter for delimiter, name in DELIMITERS.items()}
ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "cp1252": "Windows-1252",
}
_BOMS = {
    "utf-8": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
}
#: Bytes of the head checked for the encoding (valid UTF-8 or not).
ENCODING_SAMPLE_BYTES = 1024 * 1024
#: Characters of the head used to choose the separator.
DELIMITER_SAMPLE_CHARS = 64 * 1024
#: A physical line longer than this (in characters) is skipped and its row reported.
MAX_LINE_CHARS = 1024 * 1024

# Why a row could not be read: (problem, detail) as the error report shows them.
OVERLONG = ("unreadable", f"the line is longer than {MAX_LINE_CHARS:,} characters")
NUL = ("unreadable", "the row contains a NUL byte (0x00)")


@dataclass(frozen=True)
class Format:
    """How a file is read: its encoding (a key of :data:`ENCODINGS`) and separator."""

    encoding: str = "utf-8"
    delimiter: str = ","

    def describe(self) -> str:
        """E.g. "semicolon-separated, UTF-16 LE"."""
        return f"{DELIMITERS[self.delimiter]}-separated, {ENCODINGS[self.encoding]}"


def detect_encoding(head: bytes, whole: bool = True) -> str:
    """The encoding of a file starting with ``head`` (``whole``: the file has no more): its
    BOM if it has one, UTF-16 when every other byte is NUL (text without BOM), UTF-8 when the
    bytes are valid UTF-8, otherwise Windows-1252 (which decodes almost any byte)."""
    for encoding, bom in _BOMS.items():
        if head.startswith(bom):
            return encoding
    sample = head[:4096]
    half = len(sample) // 2
    if half >= 2:
        even_nul, odd_nul = sample[0::2].count(0), sample[1::2].count(0)
        if odd_nul > 0.3 * half and even_nul < 0.05 * half:
            return "utf-16-le"
        if even_nul > 0.3 * half and odd_nul < 0.05 * half:
            return "utf-16-be"
    try:
        # Not final unless whole: a sample may end in the middle of a character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def detect_delimiter(sample: str) -> str:
    """The separator (comma, semicolon or tab) that splits the sample's lines into the same
    number of columns as its first line, with more than one column; comma when none does.

    The rows are parsed by :mod:`csv` itself (quotes respected). ``csv.Sniffer`` is not used:
    its quote-guessing regular expression takes seconds to minutes on hostile input (a
    64 KiB sample of ``,"`` repeated took 16 s).
    """
    lines = sample.splitlines(keepends=True)
    if len(lines) > 1 and not lines[-1].endswith(("\n", "\r")):
        lines.pop()  # cut in the middle of a line
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        try:
            widths = [len(row) for row in csv.reader(lines[:100], delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not widths or widths[0] < 2:
            continue
        score = (sum(width == widths[0] for width in widths) / len(widths), widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def detect(path: str) -> Format:
    """The format of the file at ``path``, from its head (read once, at most 1 MiB)."""
    with open(path, "rb") as binary:
        head = binary.read(ENCODING_SAMPLE_BYTES)
    encoding = detect_encoding(head, whole=len(head) < ENCODING_SAMPLE_BYTES)
    bom = _BOMS.get(encoding, b"")
    if head.startswith(bom):
        head = head[len(bom) :]
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    sample = decoder.decode(head[: DELIMITER_SAMPLE_CHARS * 4])[:DELIMITER_SAMPLE_CHARS]
    return Format(encoding, detect_delimiter(sample))


def check_format(encoding: str, delimiter: str) -> Format:
    """A :class:`Format` of known values, or ValueError."""
    if encoding not in ENCODINGS or delimiter not in DELIMITERS:
        raise ValueError(f"unknown format {encoding!r}, {delimiter!r}")
    return Format(encoding, delimiter)


class Lines:
    """The physical lines of a text stream, each at most :data:`MAX_LINE_CHARS` long.

    A longer line is read past in chunks (never held whole) and given to the CSV reader as an
    empty line; :attr:`refused` then says why, until the reader of the rows clears it. Lines
    with a NUL byte or an undecodable byte (U+FFFD after decoding) are flagged the same way.
    """

    def __init__(self, text: io.TextIOWrapper, encoding: str) -> None:
        self.text = text
        self.refused: tuple[str, str] | None = None
        self.undecodable = ("unreadable", f"some bytes are not valid {ENCODINGS[encoding]}")

    def __iter__(self) -> Iterator[str]:
        readline = self.text.readline
        limit = MAX_LINE_CHARS
        while line := readline(limit):
            if len(line) == limit and not line.endswith(("\n", "\r")):
                while (rest := readline(limit)) and not rest.endswith(("\n", "\r")):
                    pass
                self.refused = OVERLONG
                yield "\n"
                continue
            if "\x00" in line:
                self.refused = NUL
            elif "\ufffd" in line:
                self.refused = self.undecodable
            yield line


def open_rows(path: str, fmt: Format) -> tuple[io.BufferedReader, Lines, Iterator[list[str]]]:
    """The binary file (its position is the progress), its :class:`Lines` (which say why the
    last row was refused, if it was) and a CSV row reader over them."""
    binary = open(path, "rb")  # noqa: SIM115 - closed by the caller
    bom = _BOMS.get(fmt.encoding, b"")
    if bom and binary.read(len(bom)) != bom:
        binary.seek(0)
    text = io.TextIOWrapper(binary, encoding=fmt.encoding, errors="replace", newline="")
    lines = Lines(text, fmt.encoding)
    return binary, lines, csv.reader(lines, delimiter=fmt.delimiter)


def field_too_long() -> tuple[str, str]:
    """The report's reason for a row the CSV reader refused (a field over its limit, which
    usually means an unclosed quote)."""
    return (
        "unreadable",
        f"a field is longer than {csv.field_size_limit():,} characters (an unclosed quote?)",
    )


@dataclass
class Head:
    """The header row and the first few values of each column."""

    header: list[str]
    samples: list[list[str]]


def read_head(path: str, fmt: Format, per_column: int = 3, max_rows: int = 500) -> Head:
    """The header and up to ``per_column`` non-empty values of each column, from at most
    ``max_rows`` rows. ValueError with a message for the person when there is no readable
    header (empty file, a header line over the limit)."""
    binary, lines, reader = open_rows(path, fmt)
    with binary:
        try:
            header = next(reader, None)
        except csv.Error:
            raise ValueError(
                "The first row could not be read: " + field_too_long()[1] + "."
            ) from None
        if lines.refused is OVERLONG:
            raise ValueError(f"The first row is longer than {MAX_LINE_CHARS:,} characters.")
        if header is None or not any(column.strip() for column in header):
            raise ValueError("The file is empty or has no header row.")
        header = [column.replace("\x00", "") for column in header]
        samples: list[list[str]] = [[] for _ in header]
        missing = len(header)
        for _ in range(max_rows):
            lines.refused = None
            try:
                row = next(reader, None)
            except csv.Error:
                continue
            if row is None:
                break
            if lines.refused is OVERLONG:
                continue
            # Undecodable rows are shown: replacement characters tell the person to choose
            # another encoding.
            for index, value in enumerate(row[: len(header)]):
                value = value.replace("\x00", "").strip()
                if value and len(samples[index]) < per_column:
                    samples[index].append(value[:80])
                    missing -= len(samples[index]) == per_column
            if not missing:
                break
    return Head(header, samples)
