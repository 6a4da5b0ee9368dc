"""Reading pieces from MIDI, ABC and MusicXML files, folders, zip archives and music21's built-in
folk collections.

A source expands to :class:`Item` s (one file's bytes each); :func:`parse_item` turns an item into
:class:`PieceResult` s: token ids of one melody, or the reason it was skipped. Parsing is bounded
by :class:`Limits` so hostile files end in a skip reason, never a crash or a hang.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field

import mido
import numpy as np

from seqgan_music.config import TokenizerConfig
from seqgan_music.errors import UserError
from seqgan_music.melody import SkipPiece, extract_melody, melody_from_quarters, signature_keys
from seqgan_music.metrics import key_index
from seqgan_music.midi_events import melody_events
from seqgan_music.tokenizer import Tokenizer

KINDS = {".mid": "midi", ".midi": "midi", ".abc": "abc", ".musicxml": "musicxml", ".xml": "musicxml",
         ".mxl": "musicxml"}  # file name suffix -> how it is parsed


def kind_of(name: str) -> str | None:
    """'midi', 'abc' or 'musicxml' by the file name's suffix; None for other files."""
    return KINDS.get(os.path.splitext(name.lower())[1])

# name -> (music21 corpus folder, description)
BUILTIN = {
    "essen": ("essenFolksong", "Essen folk songs, mostly German and Chinese (about 8,500 tunes)"),
    "oneills": ("oneills1850", "O'Neill's Music of Ireland, 1850 (about 1,850 tunes)"),
    "ryans": ("ryansMammoth", "Ryan's Mammoth Collection of fiddle tunes (about 1,050 tunes)"),
    "airds": ("airdsAirs", "Aird's Airs, Scottish airs and dances (about 1,100 tunes)"),
}


@dataclass
class Limits:
    """Bounds on untrusted input; exceeding one skips the file (or the source) with a reason."""

    max_file_bytes: int = 20_000_000  # one MIDI file
    max_files: int = 100_000  # files in one prepare call
    max_notes: int = 200_000  # note events in one file
    max_seconds: float = 3600.0  # duration of one piece
    max_zip_members: int = 10_000  # entries in one zip archive
    max_zip_bytes: int = 200_000_000  # bytes decompressed from one archive (and the largest archive read)
    max_midi_events: int = 1_000_000  # events of every kind in one MIDI file, controllers included
    max_quarters: int = 20_000  # length of one piece in quarter notes (bounds its token grid)
    max_score_measures: int = 1_000  # measures in a MusicXML score's first part ...
    max_score_notes: int = 10_000  # ... and notes (music21 reads a part in time that grows with their square)
    max_abc_tunes: int = 3_000  # tunes read from one ABC file ...
    max_abc_chars: int = 400_000  # ... and characters; the tunes after them are skipped with a reason
    max_abc_tune_chars: int = 20_000  # characters of one ABC tune (a long real tune has a few thousand)


@dataclass
class Item:
    """One input file: ``label`` names it for reports, ``kind`` is 'midi', 'abc' or 'musicxml'.

    Files on disk are held by ``path`` and read only when needed (hashing, then parsing in a
    worker), so preparing a large folder never holds all of its bytes; uploads and zip members
    carry their ``data``.
    """

    label: str
    kind: str
    data: bytes | None = None
    path: str | None = None
    max_bytes: int = Limits.max_file_bytes  # a file on disk is read up to this many bytes (+ 1, to tell it is longer)
    size: int = field(init=False)  # bytes, as the file system says at expansion (orders the work, nothing more)
    _sha256: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.size = len(self.data) if self.data is not None else os.stat(self.path).st_size

    def read(self) -> bytes:
        """The bytes; a file that is (now) not a regular file reads as empty, whatever it claims."""
        if self.data is not None:
            return self.data
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO swapped in cannot block the open
        with os.fdopen(fd, "rb") as fh:
            return fh.read(self.max_bytes + 1) if stat.S_ISREG(os.fstat(fd).st_mode) else b""

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.read()).hexdigest()
        return self._sha256


@dataclass
class PieceResult:
    """One piece: ``tokens`` (L,) int16 ids and note count, or ``reason`` when skipped; ``key``
    (tonic + 12 for minor) where the source has a key signature, else None."""

    label: str
    notes: int = 0
    tokens: np.ndarray | None = None
    reason: str | None = None
    key: int | None = None


# ---------------------------------------------------------------- expanding sources


def list_builtin() -> list[tuple[str, str]]:
    return [(f"builtin:{name}", desc) for name, (_, desc) in BUILTIN.items()]


def expand_sources(sources: list[str], limits: Limits) -> tuple[list[Item], list[PieceResult]]:
    """Read every source into items; unreadable files become skipped results, not errors.

    Raises UserError for a source that does not exist or a limit on the whole call.
    """
    items: list[Item] = []
    skipped: list[PieceResult] = []
    for src in sources:
        if src.startswith("builtin:"):
            items.extend(_builtin_items(src))
        elif os.path.isdir(src):
            for root, dirs, files in os.walk(src):
                dirs.sort()
                for name in sorted(files):
                    path = os.path.join(root, name)
                    if kind_of(name):
                        _add_file(path, items, skipped, limits)
                    elif name.lower().endswith(".zip"):
                        _add_zip(path, items, skipped, limits)
        elif os.path.lexists(src):
            if src.lower().endswith(".zip"):
                _add_zip(src, items, skipped, limits)
            else:
                _add_file(src, items, skipped, limits)
        else:
            raise UserError(f"{src}: no such file or folder")
        if len(items) > limits.max_files:
            raise UserError(f"{src}: more than {limits.max_files} files; raise the limit or split the collection")
    return items, skipped


def items_from_uploads(uploads: list[tuple[str, bytes]], limits: Limits) -> tuple[list[Item], list[PieceResult]]:
    """Uploaded (name, bytes) pairs -> items; zips are read in memory, names are labels only."""
    items: list[Item] = []
    skipped: list[PieceResult] = []
    if len(uploads) > limits.max_files:
        raise UserError(f"{len(uploads)} files uploaded; the limit is {limits.max_files}")
    for name, data in uploads:
        if name.lower().endswith(".zip"):
            items.extend(read_zip(name, data, skipped, limits))
        elif len(data) > limits.max_file_bytes:
            skipped.append(PieceResult(name, reason=f"file too large ({len(data)} bytes > {limits.max_file_bytes})"))
        else:
            items.append(Item(name, kind_of(name) or "midi", data))
    return items, skipped


def regular_file_size(path: str) -> tuple[int, str | None]:
    """(size, None) for a readable regular file (or a link to one), else (0, the reason to skip it)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return 0, "broken or looping symbolic link" if os.path.islink(path) else f"cannot read ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return 0, "not a regular file (a FIFO, device or socket); only regular files are read"
    if not os.access(path, os.R_OK):
        return 0, "cannot read (permission denied)"
    return info.st_size, None


def _add_file(path: str, items: list[Item], skipped: list[PieceResult], limits: Limits) -> None:
    size, reason = regular_file_size(path)
    if reason is None and size > limits.max_file_bytes:
        reason = f"file too large ({size} bytes > {limits.max_file_bytes})"
    if reason:
        skipped.append(PieceResult(path, reason=reason))
    else:
        items.append(Item(path, kind_of(path) or "midi", path=path, max_bytes=limits.max_file_bytes))


def _add_zip(path: str, items: list[Item], skipped: list[PieceResult], limits: Limits) -> None:
    size, reason = regular_file_size(path)
    if reason is None and size > limits.max_zip_bytes:
        reason = f"zip archive too large ({size} bytes > {limits.max_zip_bytes})"
    if reason:
        skipped.append(PieceResult(path, reason=reason))
        return
    data = Item(path, "zip", path=path, max_bytes=limits.max_zip_bytes).read()
    items.extend(read_zip(path, data, skipped, limits))


def read_zip(label: str, data: bytes, skipped: list[PieceResult], limits: Limits) -> list[Item]:
    """MIDI members of a zip archive held in memory. Member names are labels only, never paths.

    Caps the number of members and the total uncompressed bytes actually read (zip bombs).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        skipped.append(PieceResult(label, reason=f"not a readable zip archive ({exc})"))
        return []
    if len(members) > limits.max_zip_members:
        skipped.append(PieceResult(label, reason=f"zip has {len(members)} members (limit {limits.max_zip_members})"))
        return []
    songs = [m for m in members if kind_of(m.filename)]  # other members are ignored, as in folders
    out: list[Item] = []
    budget = limits.max_zip_bytes  # every byte decompressed counts, kept or not
    for i, member in enumerate(songs):
        name = f"{label}/{member.filename}"
        if budget <= 0:
            skipped.extend(PieceResult(f"{label}/{m.filename}", reason=f"not read: the archive already expanded to its "
                                       f"limit of {limits.max_zip_bytes} bytes") for m in songs[i:])
            break
        if member.file_size > limits.max_file_bytes:
            skipped.append(PieceResult(name, reason=f"file too large ({member.file_size} bytes > {limits.max_file_bytes})"))
            continue
        cap = min(limits.max_file_bytes, budget)
        try:
            with archive.open(member) as fh:
                content = fh.read(cap + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            skipped.append(PieceResult(name, reason=f"cannot read zip member ({exc})"))
            continue
        budget -= len(content)
        if len(content) > cap:
            why = "file too large" if cap == limits.max_file_bytes else "zip expands past its size limit"
            skipped.append(PieceResult(name, reason=f"{why} (> {cap} bytes)"))
            continue
        out.append(Item(name, kind_of(name), content))
    return out


def _builtin_items(src: str) -> list[Item]:
    name = src.split(":", 1)[1]
    if name not in BUILTIN:
        raise UserError(f"{src}: unknown collection; choose one of {', '.join('builtin:' + n for n in BUILTIN)}")
    from music21 import corpus

    folder = os.path.join(os.path.dirname(corpus.__file__), BUILTIN[name][0])
    if not os.path.isdir(folder):
        raise UserError(f"{src}: music21's corpus folder {folder} is missing")
    items = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for fname in sorted(files):
            if fname.endswith(".abc"):
                path = os.path.join(root, fname)
                items.append(Item(f"{src}/{os.path.relpath(path, folder)}", "abc", path=path))
    return items


# ---------------------------------------------------------------- parsing


def parse_item(item: Item, tok_cfg: TokenizerConfig, limits: Limits) -> list[PieceResult]:
    """Parse one item into piece results; every failure becomes a skip reason."""
    tokenizer = Tokenizer(tok_cfg)
    data = item.read()
    if len(data) > limits.max_file_bytes:
        return [PieceResult(item.label, reason=f"file too large (> {limits.max_file_bytes} bytes)")]
    if item.kind == "abc":
        return _parse_abc(item.label, data, tokenizer, limits)
    try:
        if item.kind == "musicxml":
            melody = _musicxml_melody(data, limits)
        else:
            melody = extract_melody(read_midi(data, limits), tok_cfg)
        return [_tokenize(item.label, melody, tokenizer, limits)]
    except SkipPiece as exc:
        return [PieceResult(item.label, reason=str(exc))]


def read_midi(data: bytes, limits: Limits):
    """Bytes -> PrettyMIDI, with bounds checked before pretty_midi allocates per-tick tables."""
    import pretty_midi

    if not data:
        raise SkipPiece("empty file")
    data = melody_events(data, limits.max_midi_events)
    try:
        mf = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception as exc:  # mido raises many types on corrupt bytes; all mean "unreadable"
        raise SkipPiece(f"not a readable MIDI file ({type(exc).__name__}: {str(exc)[:80]})") from None
    if mf.type == 2:
        raise SkipPiece("MIDI type 2 (independent patterns) is not supported")
    if not mf.ticks_per_beat or mf.ticks_per_beat <= 0:
        raise SkipPiece("MIDI header has no usable time division")
    notes = 0
    max_tick = 0
    for track in mf.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            notes += msg.type == "note_on"
        max_tick = max(max_tick, tick)
    if notes > limits.max_notes:
        raise SkipPiece(f"too many notes ({notes} > {limits.max_notes})")
    # at the fastest sane tempo (1000 qpm) this many ticks already exceeds the duration limit
    if max_tick > mf.ticks_per_beat * limits.max_seconds * 1000 / 60 or max_tick > 50_000_000:
        raise SkipPiece(f"absurdly long (last event at tick {max_tick})")
    try:
        return pretty_midi.PrettyMIDI(mido_object=mf)
    except Exception as exc:  # pretty_midi validates structure with generic exceptions
        raise SkipPiece(f"not a usable MIDI file ({type(exc).__name__}: {str(exc)[:80]})") from None


def _tokenize(label: str, melody, tokenizer: Tokenizer, limits: Limits) -> PieceResult:
    if len(melody) == 0:
        return PieceResult(label, reason="no notes")
    if float(melody.end_s.max()) > limits.max_seconds:
        return PieceResult(label, notes=len(melody), reason=f"longer than {limits.max_seconds:.0f} s")
    if float(melody.end_q.max() - melody.start_q.min()) > limits.max_quarters:
        return PieceResult(label, notes=len(melody), reason=f"longer than {limits.max_quarters} quarter notes")
    tokens = tokenizer.encode(melody)
    # the signature's key (of its major and relative minor, the one the notes fit)
    key = key_index(tokenizer.decode_notes(tokens), melody.keys) if melody.keys else None
    return PieceResult(label, notes=len(melody), tokens=tokens.astype(np.int16), key=key)


@functools.lru_cache(maxsize=512)
def _midi_number(pitch_name: str) -> int:
    from music21 import pitch

    return int(pitch.Pitch(pitch_name).midi)


def _parse_abc(label: str, data: bytes, tokenizer: Tokenizer, limits: Limits) -> list[PieceResult]:
    """An ABC file (many tunes) via music21's ABC tokenizer, without building full streams.

    Notes, rests, chords (highest note), ties and tuplets are read; repeats are not expanded and
    grace notes are dropped. The tempo is the tune's Q: field, else 120 qpm; the metre its first M:
    field (else 4/4), with the first bar line placing the bar lines (an anacrusis before it); the
    key its first K: field (K:Ador counts as A minor, K:Dmix as D major).
    """
    header, *tunes = ABC_TUNE_START.split(data.decode("latin-1"))
    if ABC_TUNE_START.match(header):  # the file starts with its first tune
        header, tunes = "", [header, *tunes]
    if not tunes:
        return [PieceResult(label, reason="no ABC tunes (no X: reference numbers)")]
    tunes, results = _tunes_within_budget(label, tunes, limits)
    for text in tunes:  # each tune alone: a malformed one costs only itself
        tune_label = f"{label}#{text[2:].split(maxsplit=1)[0] if text[2:].split() else '?'}"
        if len(text) > limits.max_abc_tune_chars:
            results.append(PieceResult(tune_label, reason=f"ABC tune longer than {limits.max_abc_tune_chars} characters"))
            continue
        try:
            _refuse_absurd_meters("ABC", ABC_METER.findall(header + text))
            pitch, start, end, qpm, meter, downbeat, keys = _abc_notes(_abc_tune(header + text))
            if not pitch:
                results.append(PieceResult(tune_label, reason="no notes"))
                continue
            melody = melody_from_quarters(pitch, start, end, qpm, meter, downbeat, keys)
            results.append(_tokenize(tune_label, melody, tokenizer, limits))
        except SkipPiece as exc:
            results.append(PieceResult(tune_label, reason=str(exc)))
        except Exception as exc:  # a tune music21 cannot interpret is skipped, the rest go on
            results.append(PieceResult(tune_label, reason=f"ABC tune not understood ({type(exc).__name__}: {str(exc)[:80]})"))
    return results


def _tunes_within_budget(label: str, tunes: list[str], limits: Limits) -> tuple[list[str], list[PieceResult]]:
    """The leading tunes of an ABC file within its budget (``max_abc_tunes`` tunes and
    ``max_abc_chars`` characters; a tune over ``max_abc_tune_chars`` is skipped unread and costs
    nothing), and one skip result for the tunes after them."""
    chars = 0
    for n, text in enumerate(tunes):
        chars += len(text) if len(text) <= limits.max_abc_tune_chars else 0
        if n == limits.max_abc_tunes or chars > limits.max_abc_chars:
            return tunes[:n], [PieceResult(f"{label}#{n + 1}-", reason=(
                f"{len(tunes) - n} tunes after the first {n} not read (an ABC file is read up to "
                f"{limits.max_abc_tunes} tunes and {limits.max_abc_chars} characters)"))]
    return tunes, []


ABC_TUNE_START = re.compile(r"(?m)^(?=X:)")  # an ABC tune starts at its X: line
ABC_METER = re.compile(r"(?m)(?:^|\[)M:([^\]\n]*)")  # an M: field line or an inline [M:...] field
MAX_METER_NUMBER = 128  # the largest beat count or beat type a time signature may name


def _refuse_absurd_meters(kind: str, meters) -> None:
    """SkipPiece for a time signature with a number above MAX_METER_NUMBER: music21 builds a
    signature's beats one by one (a 1000000/4 takes minutes)."""
    for meter in meters:
        if any(len(n) > 4 or int(n) > MAX_METER_NUMBER for n in re.findall(r"\d+", meter)):
            raise SkipPiece(f"{kind} time signature {meter.strip()[:40]} (numbers above {MAX_METER_NUMBER} are not music)")


def _abc_tune(text: str):
    """One tune's text (the file header before it) -> music21's token handler of that tune."""
    from music21 import abcFormat

    handler = abcFormat.ABCHandler()
    handler.process(text)
    parts = handler.splitByReferenceNumber()
    if len(parts) != 1:
        raise SkipPiece("no ABC tune (no X: reference number)")
    return next(iter(parts.values()))


def _musicxml_melody(data: bytes, limits: Limits):
    """The top line of a MusicXML score's first part (``.musicxml``/``.xml``, or ``.mxl``: zipped
    with META-INF/container.xml naming the score) as a Melody; ties merged, chords by their top
    note, the tempo of the first metronome mark (else 120 qpm), the first time signature (else 4/4)
    and the first key signature (its mode where it names one)."""
    from music21 import converter, key, meter, stream, tempo

    if data[:2] == b"PK":  # .mxl
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            with archive.open("META-INF/container.xml") as fh:  # a few hundred bytes; read no more than a score
                container = fh.read(limits.max_file_bytes).decode("utf-8", "replace")
            match = re.search(r'full-path="([^"]+)"', container)
            root = match.group(1) if match else next(n for n in archive.namelist() if not n.startswith("META-INF"))
            with archive.open(root) as fh:
                data = fh.read(limits.max_file_bytes + 1)
        except (zipfile.BadZipFile, KeyError, StopIteration, OSError, ValueError, RuntimeError, EOFError) as exc:
            raise SkipPiece(f"not a readable compressed MusicXML file ({type(exc).__name__})") from None
        if len(data) > limits.max_file_bytes:
            raise SkipPiece(f"compressed MusicXML expands past {limits.max_file_bytes} bytes")
    text = _first_part(data.decode("utf-8", "replace"), limits)
    try:
        score = converter.parseData(text, format="musicxml")
        part = score.parts[0] if getattr(score, "parts", None) else score
        flat = part.stripTies().flatten()
        notes = list(flat.notes)
        if len(notes) > limits.max_notes:
            raise SkipPiece(f"too many notes ({len(notes)} > {limits.max_notes})")
        marks = list(flat.getElementsByClass(tempo.MetronomeMark))
        qpm = float(marks[0].getQuarterBPM() or 120.0) if marks else 120.0
        pitch = [max(p.midi for p in n.pitches) for n in notes]
        start = [float(n.offset) for n in notes]
        end = [float(n.offset + n.quarterLength) for n in notes]
        signatures = list(flat.getElementsByClass(meter.TimeSignature))
        time_signature = signatures[0].ratioString if signatures else "4/4"
        key_signatures = list(flat.getElementsByClass(key.KeySignature))
        keys = signature_keys(7 * key_signatures[0].sharps, getattr(key_signatures[0], "mode", None)) if key_signatures else ()
        measures = list(part.getElementsByClass(stream.Measure))
        downbeat = float(measures[1].offset) if len(measures) > 1 else 0.0  # measure 1 starts on a downbeat
    except SkipPiece:
        raise
    except Exception as exc:  # music21 raises assorted errors on bad XML
        raise SkipPiece(f"not a readable MusicXML file ({type(exc).__name__}: {str(exc)[:80]})") from None
    if not pitch:
        raise SkipPiece("no notes")
    return melody_from_quarters(pitch, start, end, qpm, time_signature, downbeat, keys)


PART_START = re.compile(r"<part[\s>]")  # <part id="P1">, not <part-list> or <part-name>
MEASURE_START = re.compile(r"<measure[\s>]")
NOTE_START = re.compile(r"<note[\s>]")
MUSICXML_FIFTHS = re.compile(r"<fifths>\s*([-+]?\d+)\s*</fifths>")
MAX_FIFTHS = 14  # sharps or flats a key signature may have (double sharps and flats included)
MUSICXML_TIME_SIGNATURE = re.compile(r"<beats>([^<]*)</beats>\s*<beat-type>([^<]*)</beat-type>")


def _first_part(text: str, limits: Limits) -> str:
    """A MusicXML score's text cut to its first part (the melody; music21 would read every part),
    once that part's measures and notes are within the limits (music21 reads a part in time that
    grows with the square of its measures and of the notes in a measure) and its time and key
    signatures name sane numbers."""
    start = PART_START.search(text, max(text.find("</part-list>"), 0))
    end = text.find("</part>", start.start()) if start else -1
    part = text[start.start() : end + len("</part>")] if end >= 0 else text
    measures, notes = len(MEASURE_START.findall(part)), len(NOTE_START.findall(part))
    if measures > limits.max_score_measures:
        raise SkipPiece(f"MusicXML part of {measures} measures (more than {limits.max_score_measures})")
    if notes > limits.max_score_notes:
        raise SkipPiece(f"MusicXML part of {notes} notes (more than {limits.max_score_notes})")
    _refuse_absurd_meters("MusicXML", (f"{beats.strip()}/{beat_type.strip()}" for beats, beat_type in
                                       MUSICXML_TIME_SIGNATURE.findall(part)))
    for fifths in MUSICXML_FIFTHS.findall(part):  # music21 builds a key signature's accidentals one by one
        if len(fifths) > 4 or abs(int(fifths)) > MAX_FIFTHS:
            raise SkipPiece(f"MusicXML key signature of {fifths[:20]} fifths (more than {MAX_FIFTHS} sharps or flats)")
    if end < 0 or "<score-partwise" not in text[: start.start()]:
        return text
    return text[: start.start()] + part + "</score-partwise>"


def _abc_notes(tune) -> tuple[list[int], list[float], list[float], float, str, float, tuple[int, ...]]:
    """Pitches, onsets and ends (quarters), tempo (qpm), metre, the first bar line (quarters) and
    the keys its first K: field allows (:func:`signature_keys`; none for K:none)."""
    from music21 import abcFormat

    pitch: list[int] = []
    start: list[float] = []
    end: list[float] = []
    qpm = 120.0
    now = 0.0
    meter, downbeat, keys = None, None, None
    for tok in tune.tokens:
        if isinstance(tok, abcFormat.ABCMetadata) and tok.isKey() and keys is None:
            keys = ()
            if tok.data.strip()[:1] in tuple("ABCDEFG"):  # a key name (music21 reads K:none, K:HP or junk as C major)
                sharps, mode = tok.getKeySignatureParameters()
                keys = signature_keys(7 * sharps, mode)
            continue
        if isinstance(tok, abcFormat.ABCMetadata) and tok.isTempo():
            mark = tok.getMetronomeMarkObject()
            if mark is not None and mark.number:
                qpm = float(mark.getQuarterBPM() or mark.number)
            continue
        if isinstance(tok, abcFormat.ABCMetadata) and tok.isMeter() and meter is None:
            signature = tok.getTimeSignatureParameters()
            meter = f"{signature[0]}/{signature[1]}" if signature else "4/4"
            continue
        if isinstance(tok, abcFormat.ABCBar) and downbeat is None and now > 0:
            downbeat = now
            continue
        if not isinstance(tok, abcFormat.ABCNote) or getattr(tok, "inGraceNote", False):
            continue
        length = float(tok.quarterLength or 0.0)
        if isinstance(tok, abcFormat.ABCChord):
            names = [n.pitchName for n in tok.subTokens if isinstance(n, abcFormat.ABCNote) and n.pitchName]
            midi = max((_midi_number(n) for n in names), default=None)
        else:
            midi = None if tok.isRest or not tok.pitchName else _midi_number(tok.pitchName)
        if midi is not None:
            tied = tok.tie in ("stop", "continue") and pitch and pitch[-1] == midi and abs(end[-1] - now) < 1e-6
            if tied:
                end[-1] = now + length
            else:
                pitch.append(midi)
                start.append(now)
                end.append(now + length)
        now += length
    return pitch, start, end, qpm, meter or "4/4", downbeat or 0.0, keys or ()
