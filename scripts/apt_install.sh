#!/usr/bin/env bash
# apt-get update + install of the packages given, waiting (bounded) while another package manager
# holds apt's or dpkg's lock instead of failing at once.
#   bash scripts/apt_install.sh PACKAGE...
# SEQGAN_MUSIC_APT_WAIT: seconds to wait for the lock in all (default 600);
# SEQGAN_MUSIC_APT_POLL: seconds between tries (default 5).
set -uo pipefail
wait_s=${SEQGAN_MUSIC_APT_WAIT:-600}
poll_s=${SEQGAN_MUSIC_APT_POLL:-5}
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)

run_apt() {  # apt-get "$@", retried while the failure is a held lock
  local out status
  while true; do
    out=$(apt-get -q -o DPkg::Lock::Timeout="$poll_s" "$@" 2>&1)
    status=$?
    [ $status = 0 ] && return 0
    if ! grep -qiE "could not get lock|unable to acquire|is held by process" <<<"$out"; then
      printf '%s\n' "$out" >&2
      return $status
    fi
    if [ $(( $(date +%s) - start )) -ge "$wait_s" ]; then
      echo "setup: another package manager still holds the apt lock after ${wait_s} s; run setup again when it is done" >&2
      return $status
    fi
    echo "setup: another package manager holds the apt lock; waiting (at most ${wait_s} s in all)" >&2
    sleep "$poll_s"
  done
}

run_apt update && run_apt install -y --no-install-recommends "$@"
