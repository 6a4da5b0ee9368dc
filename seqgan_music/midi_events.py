"""A standard MIDI file reduced to the events the melody reader uses, read in bounded time.

mido turns every event into a Python object (about 450 bytes and 11 microseconds each), so a file
under the size limit that holds millions of controller events costs gigabytes. :func:`melody_events`
walks the raw bytes once, counts every event against a cap and keeps only notes, program changes
and the meta events a melody needs (tempo, metre, key, track name, end of track); the delta times
of dropped events carry over to the next kept one, so every kept event keeps its tick.
"""

from __future__ import annotations

from seqgan_music.melody import SkipPiece

KEPT_META = {0x03, 0x2F, 0x51, 0x58, 0x59}  # track name, end of track, tempo, time and key signature


def _varlen(data: bytes, i: int) -> tuple[int, int]:
    """The variable-length quantity at ``i`` and the index after it."""
    value = 0
    while True:
        byte = data[i]
        i += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i


def _encode_varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track_events(data: bytes, i: int, end: int, events: int, max_events: int) -> tuple[bytes, int]:
    """The kept events of the track body ``data[i:end]`` with explicit status bytes, and the
    events counted so far (``events`` before this track). Raises SkipPiece past ``max_events`` or
    on a status byte no track may hold."""
    out = bytearray()
    running = None
    carried = 0  # ticks of dropped events, added to the next kept one
    while i < end:
        delta, i = _varlen(data, i)
        carried += delta
        events += 1
        if events > max_events:
            raise SkipPiece(f"too many MIDI events (> {max_events})")
        status = data[i]
        if status >= 0x80:
            i += 1
            if status < 0xF0:
                running = status
        elif running is None:
            raise SkipPiece("not a readable MIDI file (running status without a status byte)")
        else:
            status = running
        if status == 0xFF:
            kind = data[i]
            length, body = _varlen(data, i + 1)
            i = body + length
            if kind in KEPT_META:
                out += _encode_varlen(carried) + bytes([0xFF, kind]) + _encode_varlen(length) + data[body:i]
                carried = 0
        elif status in (0xF0, 0xF7):
            length, body = _varlen(data, i)
            i = body + length
        elif status >= 0xF0:
            raise SkipPiece(f"not a readable MIDI file (status byte 0x{status:02X} in a track)")
        else:
            size = 1 if 0xC0 <= status < 0xE0 else 2
            if status < 0xA0 or 0xC0 <= status < 0xD0:  # note off, note on, program change
                out += _encode_varlen(carried) + bytes([status]) + data[i : i + size]
                carried = 0
            i += size
    return bytes(out), events


def melody_events(data: bytes, max_events: int) -> bytes:
    """A standard MIDI file holding only the events the melody reader uses (same format and time
    division; one MTrk chunk per track; chunks of other kinds dropped). Raises SkipPiece when the
    file holds more than ``max_events`` events or its bytes end inside an event."""
    if data[:4] != b"MThd" or len(data) < 14:
        raise SkipPiece("not a readable MIDI file (no MThd header)")
    header_size = int.from_bytes(data[4:8], "big")
    if header_size < 6:
        raise SkipPiece("not a readable MIDI file (short MThd header)")
    tracks = []
    events = 0
    pos = 8 + header_size
    try:
        while pos + 8 <= len(data):
            name, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "big")
            body, pos = pos + 8, pos + 8 + size
            if name == b"MTrk":
                kept, events = _track_events(data, body, min(pos, len(data)), events, max_events)
                tracks.append(b"MTrk" + len(kept).to_bytes(4, "big") + kept)
    except IndexError:
        raise SkipPiece("not a readable MIDI file (it ends inside an event)") from None
    if not tracks:
        raise SkipPiece("not a readable MIDI file (no MTrk track)")
    header = b"MThd\x00\x00\x00\x06" + data[8:10] + len(tracks).to_bytes(2, "big") + data[12:14]
    return header + b"".join(tracks)
