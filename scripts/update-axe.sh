#!/usr/bin/env bash
# Vendor a given axe-core version from the npm registry into tests/vendor/axe-core/.
# Usage: scripts/update-axe.sh 4.14.1
set -euo pipefail
version="${1:?usage: $0 VERSION (e.g. 4.14.1)}"
cd "$(dirname "$0")/.."
target="tests/vendor/axe-core"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "axe-core@${version}" >/dev/null && tar xzf axe-core-*.tgz)
actual="$(sed -n 's/^ *"version": "\(.*\)",$/\1/p' "$work/package/package.json" | head -1)"
cp "$work/package/axe.min.js" "$work/package/LICENSE" "$target/"
sed -i "s/\*\*axe-core [^*]*\*\*/**axe-core ${actual}**/" "$target/README.md"
echo "axe-core ${actual} vendored into ${target}"
