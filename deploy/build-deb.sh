#!/usr/bin/env bash
# Builds the Debian package (deploy/debian) from a temporary copy of this
# tree, so the checkout and its parent directory stay clean (dpkg-buildpackage
# writes its output next to the tree it builds). The copy holds the files git
# knows (tracked, or new and not ignored) plus web/node_modules, which the
# build embeds and which deploy/web-deps.sh fetches.
# Usage: deploy/build-deb.sh [OUTDIR]   (default: the current directory)
# Prints the path of the .deb as its last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(cd "${1:-.}" && pwd)"
if [ ! -f "$root/web/node_modules/hls.js/dist/hls.min.js" ]; then
  echo "web/node_modules is missing: run deploy/web-deps.sh first" >&2
  exit 1
fi
work="$(mktemp -d /tmp/sluice-deb.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do
    case "$f" in web/node_modules*) continue ;; esac # a symlink in worktrees: copied below
    if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
  done |
  tar --null -T - -cf -) | tar -xf - -C "$work/src"
mkdir -p "$work/src/web/node_modules"
cp -rL "$root/web/node_modules/." "$work/src/web/node_modules/"
(cd "$work/src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" \
  dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
  tail -50 "$work/build.log" >&2
  echo "dpkg-buildpackage failed (log above)" >&2
  exit 1
}
for f in "$work"/*.deb; do
  cp "$f" "$out/"
done
ls "$out"/sluice_*.deb | grep -v dbgsym | tail -1
