"""Stable row ids derived from natural keys.

A row's id is a hash of what makes it that row (a model's name, a hardware type and device, a result's
run/model/hardware/configuration), never MAX(id)+1 or a sequence. Re-ingesting a file therefore writes
the same ids, and databases filled by parallel CI jobs merge without clashes. DuckLake (team mode) has no
sequences either, so the same ids work there unchanged. Rows that have no natural key (a result stored
without a run) get a block of ids from a hash of something unique to their write (`id_block`).
"""
from __future__ import annotations

import datetime as _dt
import hashlib

_MASK = (1 << 63) - 1  # ids are positive BIGINTs


def _part(value: object) -> str:
    if value is None:
        return "\x00"  # NULL differs from the empty string
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "1" if value else "0"
    if kind is float:
        return repr(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    return str(value)


_blake2b = hashlib.blake2b


def stable_id(kind: str, *parts: object) -> int:
    """A positive 63-bit id for `kind` and its natural key parts; the same inputs give the same id."""
    text = kind + "\x1f" + "\x1f".join([_part(p) for p in parts])
    digest = _blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _MASK or 1


def id_of_text(text: str) -> int:
    """The id of a key already joined as stable_id joins it (kind, then each part, separated by \\x1f)."""
    digest = _blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _MASK or 1


def model_id_for(model_name: str) -> int:
    return stable_id("model", model_name)


def hardware_id_for(hardware_type: str, device_name: str | None = None) -> int:
    return stable_id("hardware", hardware_type, device_name or "")


def performance_result_id_for(run_id, model_id, hardware_id, test_case, batch_size, sequence_length,
                              precision) -> int:
    return stable_id("performance", run_id, model_id, hardware_id, test_case, batch_size,
                     sequence_length, precision, None)


def id_block(kind: str, key: str, count: int) -> list[int]:
    """`count` consecutive ids from a start hashed from `kind` and `key`, for rows that have no natural key
    and only must never collide (results stored without a run): `key` is unique to the block, so one hash
    serves the whole block. Two blocks overlap about as rarely as two hashed ids collide (count / 2^63)."""
    start = 1 + stable_id(kind, key) % (_MASK - count)  # the block ends below 2^63
    return list(range(start, start + count))
