"""scripts/apt_install.sh (called by scripts/setup.sh) against a fake apt-get on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "apt_install.sh"
FAKE_APT = """#!/usr/bin/env bash
n=$(cat "$COUNT" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNT"; echo "$@" >> "$CALLS"
if [ "$n" -lt "$BUSY_CALLS" ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2; exit 100
fi
[ -n "${FAIL_OTHERWISE:-}" ] && { echo "E: Unable to locate package nope" >&2; exit 100; }
exit 0
"""


def run(tmp_path: Path, busy_calls: int, wait: str = "30", fail_otherwise: str = "") -> subprocess.CompletedProcess:
    (tmp_path / "bin").mkdir(exist_ok=True)
    fake = tmp_path / "bin" / "apt-get"
    fake.write_text(FAKE_APT)
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}", COUNT=str(tmp_path / "count"),
               CALLS=str(tmp_path / "calls"), BUSY_CALLS=str(busy_calls), FAIL_OTHERWISE=fail_otherwise,
               SEQGAN_MUSIC_APT_WAIT=wait, SEQGAN_MUSIC_APT_POLL="0.1")
    return subprocess.run(["bash", str(SCRIPT), "libfluidsynth3"], env=env, capture_output=True, text=True, timeout=60)


def test_waits_while_another_package_manager_holds_the_lock(tmp_path):
    result = run(tmp_path, busy_calls=3)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("holds the apt lock; waiting") == 3
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 5 and "update" in calls[3] and "install -y --no-install-recommends libfluidsynth3" in calls[4]


def test_the_wait_is_bounded_and_other_failures_are_not_retried(tmp_path):
    result = run(tmp_path, busy_calls=10**6, wait="1")
    assert result.returncode == 100 and "still holds the apt lock after 1 s" in result.stderr
    (tmp_path / "count").unlink()
    (tmp_path / "calls").unlink()
    result = run(tmp_path, busy_calls=0, fail_otherwise="1")
    assert result.returncode == 100 and "Unable to locate package" in result.stderr
    assert len((tmp_path / "calls").read_text().splitlines()) == 1
