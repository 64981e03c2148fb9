#!/usr/bin/env bash
# Re-vendor the lab's third-party browser assets from the npm registry.
#
#   bash scripts/vendor.sh
#
# KaTeX (math typesetting) goes to src/llm_workings/lab/static/vendor/katex/:
# katex.min.js, katex.min.css, the woff2 fonts, LICENSE and VERSION. Only woff2
# fonts are kept (every browser the lab supports reads them), and the CSS is
# rewritten so it names only the files shipped here: nothing is ever fetched
# from the network.
set -euo pipefail

KATEX_VERSION="0.19.1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/src/llm_workings/lab/static/vendor/katex"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "katex@${KATEX_VERSION}" >/dev/null)
tar -xzf "$work"/katex-*.tgz -C "$work"
dist="$work/package/dist"

rm -rf "$dest"
mkdir -p "$dest/fonts"
cp "$dist/katex.min.js" "$dest/"
cp "$dist"/fonts/*.woff2 "$dest/fonts/"
cp "$work/package/LICENSE" "$dest/LICENSE"
# Drop the woff and ttf fallbacks from each @font-face so the CSS names only shipped files.
sed -E 's/,url\(fonts\/[A-Za-z0-9_-]+\.woff\) format\("woff"\)//g; s/,url\(fonts\/[A-Za-z0-9_-]+\.ttf\) format\("truetype"\)//g' \
  "$dist/katex.min.css" >"$dest/katex.min.css"

if grep -Eq '\.(woff|ttf)\)' "$dest/katex.min.css"; then
  echo "vendor.sh: katex.min.css still names woff/ttf fonts; the sed pattern needs updating" >&2
  exit 1
fi
for font in $(grep -oE 'fonts/[A-Za-z0-9_-]+\.woff2' "$dest/katex.min.css" | sort -u); do
  [[ -f "$dest/$font" ]] || { echo "vendor.sh: katex.min.css names missing $font" >&2; exit 1; }
done

cat >"$dest/VERSION" <<TXT
katex ${KATEX_VERSION} (MIT, see LICENSE), from the npm registry by scripts/vendor.sh.
Kept: dist/katex.min.js, dist/katex.min.css (woff/ttf fallbacks removed), dist/fonts/*.woff2.
TXT
echo "vendored katex ${KATEX_VERSION} into ${dest#$root/} ($(du -sh "$dest" | cut -f1))"
