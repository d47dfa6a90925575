"""Unpacks OpenClonk's C4Group archives (`Sound.ocg`), where openclonk-data keeps its sound effects.

Layout, as read from the files themselves:
    file      gzip stream whose two magic bytes are 1E 8C instead of 1F 8B
    group     204-byte header, scrambled (every byte XOR 237, then bytes i and i+2 swapped for each i = 0, 3, 6...),
              holding the id "RedWolf Design GrpFolder" and, at byte 36, the number of entries (int32);
              then that many 316-byte entries: name (260 bytes, NUL-padded), packed, child_group, size,
              reserved, offset (int32 each), ...; then the entries' bytes, `offset` counted from the end of the
              entry table. A child group is a group in the same layout (its own scrambled header), uncompressed.
"""

import gzip
import pathlib
import struct

__all__ = ["extract_group", "read_group"]

_MAGIC = b"\x1e\x8c"
_HEADER_SIZE = 204
_ENTRY_SIZE = 316
_GROUP_ID = b"RedWolf Design GrpFolder"


def _unscramble(header):
    header = bytearray(b ^ 237 for b in header)
    for i in range(0, len(header) - 2, 3):
        header[i], header[i + 2] = header[i + 2], header[i]
    return bytes(header)


def _entries(data, where):
    """Yields (name, is_group, bytes) of the group that starts `data`."""
    header = _unscramble(data[:_HEADER_SIZE])
    if not header.startswith(_GROUP_ID):
        raise ValueError(f"{where}: not a C4Group (no {_GROUP_ID.decode()} header)")
    (count,) = struct.unpack_from("<i", header, 36)
    table_end = _HEADER_SIZE + count * _ENTRY_SIZE
    for index in range(count):
        start = _HEADER_SIZE + index * _ENTRY_SIZE
        name = data[start:start + 260].split(b"\0", 1)[0].decode("latin-1")
        _, child_group, size, _, offset = struct.unpack_from("<5i", data, start + 260)
        body = data[table_end + offset:table_end + offset + size]
        if len(body) != size:
            raise ValueError(f"{where}/{name}: truncated entry ({len(body)} of {size} bytes)")
        yield name, bool(child_group), body


def read_group(path):
    """{relative path: bytes} of every file in the archive at `path`, child groups walked."""
    raw = pathlib.Path(path).read_bytes()
    if raw[:2] != _MAGIC:
        raise ValueError(f"{path}: not a C4Group archive (magic {raw[:2].hex()}, expected {_MAGIC.hex()})")
    files = {}
    pending = [("", gzip.decompress(b"\x1f\x8b" + raw[2:]))]
    while pending:
        prefix, data = pending.pop()
        for name, is_group, body in _entries(data, f"{path}:{prefix}"):
            if is_group:
                pending.append((f"{prefix}{name}/", body))
            else:
                files[f"{prefix}{name}"] = body
    return files


def extract_group(path, out_dir):
    """Writes every file of the archive at `path` under `out_dir` (keeping its folders); returns their paths."""
    out_dir = pathlib.Path(out_dir)
    written = []
    for relative, body in sorted(read_group(path).items()):
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        written.append(target)
    return written
