#!/usr/bin/env bash
# Installs the web files' npm dependencies (hls.js, uPlot; versions pinned by
# web/package-lock.json) into web/node_modules, where the build embeds them
# into the binary. Skips the network when they are already there at the
# locked versions. Run by deploy/quickstart.sh and tests/run.sh before meson.
set -euo pipefail
cd "$(dirname "$0")/../web"
stamp=node_modules/.sluice-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
