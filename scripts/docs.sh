#!/usr/bin/env bash
# Builds the documentation site into build/docs/html: the API reference generated from the public
# headers by Doxygen (docs/Doxyfile, topics in docs/api.dox) and the tutorials of docs/ as pages of
# the same site. Fails on any Doxygen warning (an undocumented public symbol, a broken reference, a
# missing snippet) and on any broken link in the pages. If chromium is installed, also saves a
# screenshot of the entry page as build/docs/site.png.
#   bash scripts/docs.sh        then open build/docs/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
command -v doxygen >/dev/null || { echo "docs: doxygen is not installed (scripts/install-deps.sh)" >&2; exit 1; }

out=build/docs
rm -rf "$out"
mkdir -p "$out/md"
# The Markdown pages, with links rewritten for the site (and links to missing files refused).
perl scripts/md2site.pl "$out/md" README.md docs/*.md

doxygen docs/Doxyfile
if [ -s "$out/doxygen-warnings.log" ]; then
    cat "$out/doxygen-warnings.log" >&2
    echo "docs: $(grep -c . "$out/doxygen-warnings.log") line(s) of Doxygen warnings (see $out/doxygen-warnings.log)" >&2
    exit 1
fi
# Doxygen 1.9.4 links a class page's summary to its "Classes" section when the class has a
# private nested class, although it leaves that section out: drop the dead link.
for page in $(grep -l 'href="#nested-classes"' "$out"/html/*.html || true); do
    grep -q -e 'id="nested-classes"' -e 'name="nested-classes"' "$page" || perl -0pi -e 's{<a href="#nested-classes">Classes</a> &#124;\n}{}' "$page"
done
perl scripts/check-links.pl "$out/html"
echo "docs: the site is in $out/html (open $out/html/index.html)"

if command -v chromium >/dev/null; then
    # chromium's messages (GPU, D-Bus) are noise here; only the screenshot matters.
    if timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=5000 \
        --screenshot="$PWD/$out/site.png" --window-size=1280,900 \
        "file://$PWD/$out/html/index.html" >/dev/null 2>&1; then
        echo "docs: screenshot of the entry page in $out/site.png"
    else
        echo "docs: chromium could not take a screenshot (not an error)" >&2
    fi
fi
