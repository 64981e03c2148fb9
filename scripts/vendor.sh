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
#
# D3's modules (scales, axes, colour maps and what they import) go to
# src/llm_workings/lab/static/vendor/d3/NAME/: each package's ES module src/ tree and
# its LICENSE, with bare specifiers (`from "d3-array"`) rewritten to relative paths,
# so the browser loads them as plain modules with no import map and no build step.
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

# name@version, pinned; the set is closed under their imports (vendor.sh fails otherwise).
D3_PACKAGES=(
  d3-array@3.2.5 d3-axis@3.0.1 d3-color@3.1.1 d3-format@3.1.3 d3-interpolate@3.0.2
  d3-scale@4.0.3 d3-scale-chromatic@3.1.1 d3-selection@3.0.1 d3-time@3.1.1 d3-time-format@4.1.1
)
d3dest="$root/src/llm_workings/lab/static/vendor/d3"
rm -rf "$d3dest"
mkdir -p "$d3dest"
names=()
for spec in "${D3_PACKAGES[@]}"; do
  name="${spec%@*}"
  names+=("$name")
  mkdir -p "$work/$name"
  (cd "$work/$name" && npm pack --silent "$spec" >/dev/null && tar -xzf ./*.tgz)
  cp "$work/$name/package/dist/$name.mjs" "$d3dest/$name.js"
  cp "$work/$name/package/LICENSE" "$d3dest/LICENSE-$name"
done
# Each package ships one ES module bundle that imports its dependencies by bare name
# (`from 'd3-array'`); point those at the sibling files, then refuse any bare import left.
alternatives="$(IFS='|'; echo "${names[*]}")"
sed -E -i "s/from '(${alternatives})';/from '.\/\1.js';/" "$d3dest"/*.js
if grep -nE "^import .* from '[^.]" "$d3dest"/*.js; then
  echo "vendor.sh: a d3 module imports a package not in D3_PACKAGES" >&2
  exit 1
fi
{
  echo "D3 modules from the npm registry by scripts/vendor.sh (ISC, see LICENSE-NAME)."
  echo "Kept: each package's dist/NAME.mjs as NAME.js, bare imports pointed at the sibling files."
  printf '%s\n' "${D3_PACKAGES[@]}"
} >"$d3dest/VERSION"
echo "vendored ${#D3_PACKAGES[@]} d3 modules into ${d3dest#$root/} ($(du -sh "$d3dest" | cut -f1))"
