#!/usr/bin/env bash
# Install everything seqgan-music needs on a Debian-like machine with Python 3.11.
#   bash scripts/setup.sh         the app and the CLI
#   bash scripts/setup.sh --dev   also the test tools (pytest, hypothesis, playwright, ruff)
# System packages: libfluidsynth3 (real instrument audio), a C compiler (gcc: the fused CPU
# rollout kernels, built on first use) and, with --dev, chromium (browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1

apt_pkgs=()
ldconfig -p 2>/dev/null | grep -q libfluidsynth.so.3 || apt_pkgs+=(libfluidsynth3)
printf '#include <stdint.h>\nint main(void){return 0;}\n' | cc -x c - -o /dev/null 2>/dev/null || apt_pkgs+=(gcc libc6-dev)
[ $dev = 1 ] && ! command -v chromium >/dev/null && apt_pkgs+=(chromium)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: apt-get install ${apt_pkgs[*]}"
    bash scripts/apt_install.sh "${apt_pkgs[@]}" >/dev/null
  else
    echo "setup: please install ${apt_pkgs[*]} with your package manager (without them audio falls back to a plain synthesizer, rollouts to PyTorch ops)" >&2
  fi
fi

req=requirements.txt
[ $dev = 1 ] && req=requirements-dev.txt
python3 -m pip install -q --disable-pip-version-check -r "$req"
python3 -m pip install -q --disable-pip-version-check --no-deps -e .
echo "setup: done"
