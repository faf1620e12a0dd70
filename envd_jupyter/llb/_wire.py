"""Protobuf wire encoding by hand, in the field order Go's protobuf-go writes.

Op digests are sha256 of the op bytes, so the bytes must equal Go's: fields in number
order except that a oneof comes after the plain fields (Go writes ``Op.platform`` (10)
before ``Op.exec`` (2)), zero scalars omitted, set-but-empty messages written, map
entries sorted by key with key and value always present. The Python protobuf runtime
orders oneofs by number, hence this module.
"""

from __future__ import annotations

def _slow_varint(n: int) -> bytes:
    out = bytearray()
    while n > 127:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_slow_varint(i) for i in range(16384)]  # every tag and most lengths: one list lookup
_MINUS_ONE = _slow_varint((1 << 64) - 1)  # -1, BuildKit's "none" index and timestamp: ten bytes


def varint(n: int) -> bytes:
    """Unsigned varint; negative int64/int32 values use their 64-bit two's complement."""
    if 0 <= n < 16384:
        return _SMALL[n]
    if n == -1:
        return _MINUS_ONE
    return _slow_varint(n + (1 << 64) if n < 0 else n)


def key(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def len_field(field: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message), written even if empty."""
    n = len(payload)
    return _SMALL[(field << 3) | 2] + (_SMALL[n] if n < 16384 else _slow_varint(n)) + payload


def str_field(field: int, value: str) -> bytes:
    """A proto3 string field: omitted when empty."""
    if not value:
        return b""
    data = value.encode()
    n = len(data)
    return _SMALL[(field << 3) | 2] + (_SMALL[n] if n < 16384 else _slow_varint(n)) + data


def bytes_field(field: int, value: bytes) -> bytes:
    if not value:
        return b""
    return varint((field << 3) | 2) + varint(len(value)) + value


def int_field(field: int, value: int) -> bytes:
    """A proto3 varint field (int32/int64/uint32/bool/enum): omitted when zero."""
    if not value:
        return b""
    return varint(field << 3) + varint(int(value))


def repeated_str(field: int, values) -> bytes:
    tag = varint((field << 3) | 2)
    parts = []
    for v in values:
        data = v.encode()
        parts.append(tag + varint(len(data)) + data)
    return b"".join(parts)


def packed_ints(field: int, values) -> bytes:
    if not values:
        return b""
    return len_field(field, b"".join(varint(v) for v in values))


def str_map(field: int, mapping: dict) -> bytes:
    """map<string,string>: one entry message per key, sorted, key and value always written."""
    tag = varint((field << 3) | 2)
    parts = []
    for k in sorted(mapping):
        kb, vb = k.encode(), mapping[k].encode()
        entry = b"\x0a" + varint(len(kb)) + kb + b"\x12" + varint(len(vb)) + vb
        parts.append(tag + varint(len(entry)) + entry)
    return b"".join(parts)


def bool_map(field: int, mapping: dict) -> bytes:
    tag = varint((field << 3) | 2)
    parts = []
    for k in sorted(mapping):
        kb = k.encode()
        entry = b"\x0a" + varint(len(kb)) + kb + (b"\x10\x01" if mapping[k] else b"\x10\x00")
        parts.append(tag + varint(len(entry)) + entry)
    return b"".join(parts)


def msg_map(field: int, mapping: dict) -> bytes:
    """map<string, message> where values are already-encoded message bytes."""
    tag = varint((field << 3) | 2)
    parts = []
    for k in sorted(mapping):
        kb, vb = k.encode(), mapping[k]
        entry = b"\x0a" + varint(len(kb)) + kb + b"\x12" + varint(len(vb)) + vb
        parts.append(tag + varint(len(entry)) + entry)
    return b"".join(parts)
