"""Hostile input files, each made here in memory, and a benchmark that prepares each one beside a
good file and reports seconds, peak memory and the line that names it (``seqgan-music bench
hostile``). Each file stays under the documented size limit and attacks the time or memory of one
reader: a long or many-part MusicXML score, a compressed MusicXML whose container inflates to
gigabytes, an absurd tempo and note length, an ABC file of thousands of tunes or one endless tune,
a MIDI file flooded with control changes.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable

import pretty_midi

MAX_SECONDS = 10.0  # each hostile file must be refused or read within this ...
MAX_MB = 500.0  # ... and this peak resident memory (the whole prepare process)


def _musicxml(parts: int, measures: int, notes_per_measure: int, duration: int = 1, tempo: str = "") -> bytes:
    """A partwise score of ``parts`` parts, each ``measures`` measures of C4 notes lasting
    ``duration`` divisions (one division = a quarter note)."""
    note = (f"<note><pitch><step>C</step><octave>4</octave></pitch><duration>{duration}</duration>"
            "<type>quarter</type></note>")
    attributes = "<attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>"
    sound = f'<direction><sound tempo="{tempo}"/></direction>' if tempo else ""
    measure_body = note * notes_per_measure
    out = ['<?xml version="1.0"?><score-partwise version="3.1"><part-list>']
    out += [f'<score-part id="P{p}"><part-name>P{p}</part-name></score-part>' for p in range(parts)]
    out.append("</part-list>")
    for p in range(parts):
        out.append(f'<part id="P{p}">')
        for m in range(measures):
            out.append(f'<measure number="{m + 1}">' + (attributes + sound if m == 0 else "") + measure_body + "</measure>")
        out.append("</part>")
    out.append("</score-partwise>")
    return "".join(out).encode()


def musicxml_long_part() -> bytes:
    """40,000 quarter notes in 10,000 measures of one part (4.4 MB): music21 parses it in time
    that grows with the square of the measures."""
    return _musicxml(1, 10_000, 4)


def musicxml_one_long_measure() -> bytes:
    """40,000 notes in one measure (4 MB): quadratic in the notes of a measure."""
    return _musicxml(1, 1, 40_000)


def musicxml_many_parts() -> bytes:
    """40 parts of 500 measures (8 MB); only the first part is the melody."""
    return _musicxml(40, 500, 4)


def musicxml_absurd_length() -> bytes:
    """One note 100,000,000 quarters long at 100,000,000 quarters a minute (a few seconds)."""
    return _musicxml(1, 1, 1, duration=100_000_000, tempo="100000000")


def musicxml_absurd_signatures() -> bytes:
    """A time signature of 1,000,000 beats and a key of 1,000,000,000 fifths (music21 builds
    both one beat and one accidental at a time: hours)."""
    return (_musicxml(1, 2, 4).replace(b"<beats>4</beats>", b"<beats>1000000</beats>", 1)
            .replace(b"<attributes>", b"<attributes><key><fifths>1000000000</fifths></key>", 1))


def mxl_container_bomb(inflated_bytes: int = 2_500_000_000) -> bytes:
    """A compressed MusicXML whose META-INF/container.xml inflates to ``inflated_bytes`` (2.5 GB
    from about 2.4 MB) beside a small valid score."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("META-INF/container.xml", "w", force_zip64=True) as fh:
            fh.write(b'<container><rootfiles><rootfile full-path="score.musicxml"/></rootfiles></container>')
            chunk = b" " * 2**24
            for _ in range(inflated_bytes // len(chunk)):
                fh.write(chunk)
        archive.writestr("score.musicxml", _musicxml(1, 4, 4))
    return buf.getvalue()


def abc_absurd_length() -> bytes:
    """71 bytes: a tempo of 100,000,000 quarters a minute and a note 100,000,000 quarters long."""
    return b"X:1\nT:t\nQ:1/4=100000000\nL:1/4\nM:4/4\nK:C\nC100000000|\n"


def abc_absurd_meter() -> bytes:
    """A tune in 1000000/4 (music21 builds the signature's beats one by one: minutes)."""
    return b"X:1\nT:t\nM:1000000/4\nL:1/8\nK:G\nGABc dedB|\n"


def abc_many_tunes(tunes: int = 20_000) -> bytes:
    """20,000 tiny tunes (1.4 MB)."""
    return "".join(f"X:{i + 1}\nT:t{i}\nM:4/4\nL:1/8\nK:G\nGABc|\n" for i in range(tunes)).encode()


def abc_one_long_tune(bars: int = 50_000) -> bytes:
    """One tune of 400,000 notes (1.8 MB)."""
    return b"X:1\nT:long\nM:4/4\nL:1/8\nK:G\n" + b"GABc dedB|\n" * bars


def abc_long_tunes(tunes: int = 1_000) -> bytes:
    """1,000 tunes of 19,900 characters each (19.9 MB): each under the tune limit, together
    minutes of music21's reading."""
    body = b"GABc dedB|" * 1_988
    return b"".join(b"X:%d\nT:t\nM:4/4\nL:1/8\nK:G\n" % (i + 1) + body + b"\n" for i in range(tunes))


def midi_control_flood(events: int = 6_000_000) -> bytes:
    """A 12-note melody then 6,000,000 control changes under running status (18 MB)."""
    notes = b"".join(b"\x00\x90" + bytes([60 + i, 64]) + b"\x60\x80" + bytes([60 + i, 0]) for i in range(12))
    flood = b"\x00\xb0\x07\x64" + b"\x00\x07\x64" * (events - 1)
    body = notes + flood + b"\x00\xff\x2f\x00"
    return b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60" + b"MTrk" + len(body).to_bytes(4, "big") + body


CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "MusicXML, 10,000 measures": ("long.musicxml", musicxml_long_part),
    "MusicXML, 40,000 notes in a measure": ("measure.musicxml", musicxml_one_long_measure),
    "MusicXML, 40 parts": ("parts.musicxml", musicxml_many_parts),
    "MusicXML, absurd tempo and length": ("absurd.musicxml", musicxml_absurd_length),
    "MusicXML, absurd time and key signatures": ("signatures.musicxml", musicxml_absurd_signatures),
    ".mxl, 2.5 GB container": ("bomb.mxl", mxl_container_bomb),
    "ABC, absurd tempo and length": ("absurd.abc", abc_absurd_length),
    "ABC, time signature 1000000/4": ("meter.abc", abc_absurd_meter),
    "ABC, 20,000 tunes": ("many.abc", abc_many_tunes),
    "ABC, one 400,000-note tune": ("long.abc", abc_one_long_tune),
    "ABC, 1,000 tunes of 19,900 characters": ("tunes.abc", abc_long_tunes),
    "MIDI, 6,000,000 control changes": ("flood.mid", midi_control_flood),
}


def good_midi() -> bytes:
    """A plain 16-note melody: the file that must still be prepared beside each hostile one."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=0)
    for i, pitch in enumerate([60, 62, 64, 65, 67, 65, 64, 62] * 2):
        inst.notes.append(pretty_midi.Note(80, pitch, i * 0.5, i * 0.5 + 0.45))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def _run_and_report_peak(report: str, cmd: list[str]) -> int:
    """Run ``cmd`` as this process's child and write its peak resident KB (the largest of it and
    its own children, as the kernel counts them) to ``report``; its exit code is returned.

    The measured command runs as a grandchild of the caller so that its peak is its own: Linux
    carries the memory high-water mark of a process across ``exec``, so a child started straight
    from a large process (a test runner) would report that process's peak."""
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    with open(report, "w") as fh:
        fh.write(str(usage.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


def prepare_measured(folder: str, out: str, timeout: float) -> dict:
    """``prepare FOLDER --out OUT`` in a child process: seconds, peak resident MB (the prepare
    process and its parsing workers, as the kernel counts them; None when killed), exit status
    (None when killed at ``timeout``) and output."""
    log_path, report = out + ".log", out + ".peak_kb"
    cmd = [sys.executable, "-m", "seqgan_music.hostile_inputs", report,
           sys.executable, "-m", "seqgan_music", "prepare", folder, "--out", out, "--no-cache"]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the prepare process and its parsing workers too
            proc.wait()
            rc = None
    seconds = time.perf_counter() - start
    with open(log_path) as log:
        output = log.read()
    peak_mb = None
    if rc is not None and os.path.exists(report):
        with open(report) as fh:
            peak_mb = int(fh.read()) / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, "rc": rc, "output": output}


def run_case(name: str, work_dir: str, timeout: float = 120.0) -> dict:
    """Prepare the case's file beside :func:`good_midi`; the row the benchmark prints."""
    file_name, make = CASES[name]
    folder = os.path.join(work_dir, re.sub(r"\W+", "_", name))
    os.makedirs(folder, exist_ok=True)
    data = make()
    with open(os.path.join(folder, file_name), "wb") as fh:
        fh.write(data)
    with open(os.path.join(folder, "good.mid"), "wb") as fh:
        fh.write(good_midi())
    r = prepare_measured(folder, os.path.join(folder, "dataset"), timeout)
    lines = [line.strip() for line in r["output"].splitlines() if file_name in line]
    good = os.path.exists(os.path.join(folder, "dataset", "windows.npz"))
    return {"case": name, "bytes": len(data), **r, "line": lines[0] if lines else r["output"].strip()[-200:],
            "good_prepared": good,
            "ok": r["rc"] == 0 and good and r["seconds"] <= MAX_SECONDS and (r["peak_mb"] or 0) <= MAX_MB}


def _megabytes(mb: float | None) -> str:
    return "     ?" if mb is None else f"{mb:6.0f}"


def format_row(r: dict) -> str:
    verdict = "ok" if r["ok"] else "FAIL"
    return (f"{r['case']:42s} {r['bytes'] / 1e6:6.2f} MB  {r['seconds']:6.1f} s  {_megabytes(r['peak_mb'])} MB peak  "
            f"good file {'prepared' if r['good_prepared'] else 'LOST'}  {verdict}\n    {r['line']}")


if __name__ == "__main__":  # python -m seqgan_music.hostile_inputs REPORT CMD...: see _run_and_report_peak
    sys.exit(_run_and_report_peak(sys.argv[1], sys.argv[2:]))
