"""The original text of every ingested document, compressed, in `source_documents`.

Result files of one system repeat the same few shapes, so each document is compressed with zstd against a
shared *raw-content dictionary*: about 1 MB of whole documents sampled evenly from the files of the first
large ingest, stored once in `compression_dictionaries`. A new document then costs little more than the
numbers that differ from its closest sample (about 5% of its size on the legacy corpus, where per-file zlib
gives 25-33%), and every document still decompresses on its own. A database without a dictionary (a small
first ingest) stores plain zstd frames until a large ingest trains one.

The dictionary is chosen deterministically from the list of files (evenly spaced picks, in order), so a
run that was killed before the dictionary was committed trains the same one again. This module owns the
codecs and the two tables; it never decides which files are ingested.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import zstandard

from benchmark_db import identity

CODEC_PLAIN = "zstd"
CODEC_DICT = "zstd-dict"
DICT_CODEC = "zstd-rawcontent"  # the dictionary's own bytes are stored zstd-compressed
DICTIONARY_BUDGET = 1 << 20  # zstd's window at the levels used is 2 MB: the dictionary must fit inside it
MIN_DICTIONARY_DOCUMENTS = 32  # below this a sample says too little about the next files
MAX_SAMPLE_DOCUMENT = 128 << 10  # one huge document would crowd the others out of the dictionary
LEVEL = 6


def choose_samples(sizes: Sequence[int], budget: int = DICTIONARY_BUDGET) -> list[int]:
    """Indexes of documents to put in the dictionary: evenly spaced over the list, within `budget` bytes."""
    candidates = [i for i, s in enumerate(sizes) if 0 < s <= MAX_SAMPLE_DOCUMENT]
    if len(candidates) < MIN_DICTIONARY_DOCUMENTS:
        return []
    mean = sum(sizes[i] for i in candidates) / len(candidates)
    wanted = max(1, int(budget // max(mean, 1)))
    step = max(1, len(candidates) // wanted)
    chosen, total = [], 0
    for i in candidates[::step]:
        if total + sizes[i] > budget:
            continue
        chosen.append(i)
        total += sizes[i]
    return chosen if len(chosen) >= MIN_DICTIONARY_DOCUMENTS else []


def build_dictionary(samples: Sequence[bytes]) -> tuple[int, bytes] | None:
    """(dictionary_id, content) of a raw-content dictionary made of `samples`, or None for too few."""
    if len(samples) < MIN_DICTIONARY_DOCUMENTS:
        return None
    # the most useful content should sit closest to the data: zstd prefers recent matches
    content = b"".join(samples)
    dictionary_id = identity.stable_id("zstd-dictionary", hashlib.sha256(content).hexdigest())
    return dictionary_id, content


def load_dictionary(conn) -> tuple[int, bytes] | None:
    """The dictionary new documents are compressed with: the latest stored one, if any."""
    row = conn.execute(
        "SELECT dictionary_id, content FROM compression_dictionaries WHERE codec = ? "
        "ORDER BY created_at DESC, dictionary_id DESC LIMIT 1", [DICT_CODEC]).fetchone()
    return (row[0], _unpack(bytes(row[1]))) if row else None


def _unpack(stored: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(stored)


def store_dictionary(conn, dictionary_id: int, content: bytes) -> None:
    packed = zstandard.ZstdCompressor(level=9).compress(content)
    conn.execute("INSERT INTO compression_dictionaries (dictionary_id, codec, content) SELECT ?, ?, ? "
                 "WHERE NOT EXISTS (SELECT 1 FROM compression_dictionaries WHERE dictionary_id = ?)",
                 [dictionary_id, DICT_CODEC, packed, dictionary_id])


class Compressor:
    """Compresses documents, with the shared dictionary when there is one. One per process."""

    def __init__(self, dictionary: tuple[int, bytes] | None = None, level: int = LEVEL):
        self.dictionary_id = dictionary[0] if dictionary else None
        if dictionary:
            data = zstandard.ZstdCompressionDict(dictionary[1], dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            data.precompute_compress(level=level)  # digest the dictionary once, not per document
            self._zstd = zstandard.ZstdCompressor(level=level, dict_data=data, write_content_size=True)
            self.codec = CODEC_DICT
        else:
            self._zstd = zstandard.ZstdCompressor(level=level + 3, write_content_size=True)
            self.codec = CODEC_PLAIN

    def compress(self, data: bytes) -> bytes:
        return self._zstd.compress(data)


_decompressors: dict[int | None, zstandard.ZstdDecompressor] = {}


def _decompressor(conn, dictionary_id: int | None) -> zstandard.ZstdDecompressor:
    if dictionary_id not in _decompressors:
        if dictionary_id is None:
            _decompressors[None] = zstandard.ZstdDecompressor()
        else:
            row = conn.execute("SELECT content FROM compression_dictionaries WHERE dictionary_id = ?",
                               [dictionary_id]).fetchone()
            if row is None:
                raise LookupError(f"compression dictionary {dictionary_id} is missing")
            data = zstandard.ZstdCompressionDict(_unpack(bytes(row[0])), dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            _decompressors[dictionary_id] = zstandard.ZstdDecompressor(dict_data=data)
    return _decompressors[dictionary_id]


def decompress(conn, codec: str, dictionary_id: int | None, content: bytes) -> bytes:
    if codec == CODEC_PLAIN:
        return _decompressor(conn, None).decompress(content)
    if codec == CODEC_DICT:
        return _decompressor(conn, dictionary_id).decompress(content)
    raise ValueError(f"unknown codec {codec!r}")


def original_text(conn, sha256: str) -> bytes | None:
    """The original bytes of the document with this sha256, or None when it was never stored."""
    row = conn.execute("SELECT codec, dictionary_id, content FROM source_documents WHERE sha256 = ?",
                       [sha256]).fetchone()
    if row is None:
        return None
    return decompress(conn, row[0], row[1], bytes(row[2]))
