#!/usr/bin/env bash
# The JavaScript that rr report inlines (Vega, Vega-Lite, vega-embed: BSD-3-Clause), taken from
# the npm registry at setup time, pinned by version and checked by SHA-256, into
# recorder/assets/ (not kept in git).  Idempotent: files that check out are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=recorder/assets
mkdir -p "$dest"
# package@version  file in the package  sha256 of that file
pins=(
  "vega@6.4.0 build/vega.min.js 8f6a3587cf8d4f42c7e08120e3eb05d067e746d554e39d2dcf52acc0bd5ba28f"
  "vega-lite@6.5.0 build/vega-lite.min.js 83e215e84e308ee8688fa6503ba0f1cf8a3c05c0d61df2841a0b92bf86809e00"
  "vega-embed@7.3.0 build/vega-embed.min.js b1455caba2fb1a72fb46025ba0ba1316e2dbc7f0dd40a3f6040172bf9c08ba91"
)
ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }
tmp=""
trap '[ -n "$tmp" ] && rm -rf "$tmp"' EXIT
for pin in "${pins[@]}"; do
  read -r pkg file sum <<<"$pin"
  target="$dest/$(basename "$file")"
  ok "$target" "$sum" && continue
  command -v npm >/dev/null || { echo "fetch-report-js: npm is needed (apt-get install npm)" >&2; exit 1; }
  [ -n "$tmp" ] || tmp=$(mktemp -d)
  name=$(cd "$tmp" && npm pack --silent "$pkg" | tail -1)
  tar xzf "$tmp/$name" -C "$tmp" "package/$file"
  if ! echo "$sum  $tmp/package/$file" | sha256sum -c --status; then
    echo "fetch-report-js: $pkg $file does not match its pinned SHA-256" >&2
    exit 1
  fi
  cp "$tmp/package/$file" "$target.part" && mv "$target.part" "$target"
  rm -rf "$tmp/package"
  echo "fetch-report-js: $target ($pkg)" >&2
done
