#!/usr/bin/env bash
# doc_sync: the docs cannot drift from working code. Every ```cpp block in README.md and docs/*.md
# must be quoted verbatim from a file under examples/ or tests/ (which CI compiles and runs), and
# every ```text block announced by a line "<!-- output of NAME -->" must be printed by that program.
# In docs/libtorch.md, whose tables put LibTorch and tapegrad side by side, every `inline code` in a
# table column headed "tapegrad" must also appear verbatim within one line of such a file.
#   doc_sync.sh [source-dir]                  check the C++ blocks and table cells (the doc_sync test)
#   doc_sync.sh --run NAME EXE [source-dir]   run EXE (must exit 0), check NAME's output blocks
# Lines are compared with leading and trailing whitespace removed; a block must match consecutive
# lines of one file (or of the output).
set -euo pipefail

mode=code
if [ "${1:-}" = "--run" ]; then
    [ $# -ge 3 ] || { echo "usage: doc_sync.sh --run NAME EXE [source-dir]" >&2; exit 2; }
    mode=output name=$2 exe=$(realpath "$3")
    shift 3
fi
cd "${1:-$(dirname "$0")/..}"

mapfile -t docs < <( { [ -f README.md ] && echo README.md; find docs -name '*.md' 2>/dev/null; } | sort)
if [ ${#docs[@]} -eq 0 ]; then
    echo "doc_sync: no README.md or docs/*.md found in $(pwd)" >&2
    exit 1
fi

if [ "$mode" = code ]; then
    mapfile -t corpus < <(find examples tests -type f \
        \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc' \) 2>/dev/null | sort)
else
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    status=0
    "$exe" > "$out" || status=$?
    cat "$out"
    if [ $status -ne 0 ]; then
        echo "doc_sync: $name exited with status $status" >&2
        exit 1
    fi
    corpus=("$out")
fi

# awk reads the corpus first (phase=src), then the docs (phase=doc). Each corpus file becomes a run
# of "\n"-separated trimmed lines behind a \001 line, so a block matches only whole consecutive
# lines of a single file.
awk -v mode="$mode" -v name="${name:-}" '
function trim(s) { sub(/\r$/, "", s); gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
function check_block(   first) {
    # blank lines at the block edges carry nothing and would only fail to match
    sub(/^\n+/, "", block); sub(/\n+$/, "", block)
    nblocks++
    first = block; sub(/\n.*/, "", first)
    if (block == "") {
        printf "doc_sync: %s:%d: empty %s block\n", FILENAME, block_line, what
        bad++
    } else if (index(corpus, "\n" block "\n") == 0) {
        printf "doc_sync: %s:%d: %s block not found verbatim in %s; its first line: %s\n",
               FILENAME, block_line, what, where, first
        bad++
    }
}
# A table row of docs/libtorch.md. The header row says which column is headed "tapegrad"; in the
# rows below it, each `code` span of that column must be in the corpus within one line. Cells are
# split at unescaped pipes; a backslash before a pipe keeps it inside its cell, as GitHub does.
function check_table_row(line,   n, cells, i, cell, code) {
    gsub(/\\[|]/, "\002", line)
    sub(/^[ \t]*[|]/, "", line); sub(/[|][ \t]*$/, "", line)
    n = split(line, cells, "|")
    if (!in_table) {
        in_table = 1; tcol = 0
        for (i = 1; i <= n; i++) {
            cell = tolower(trim(cells[i])); gsub(/[*_`]/, "", cell)
            if (cell == "tapegrad") tcol = i
        }
        return
    }
    if (tcol == 0 || tcol > n) return
    cell = cells[tcol]
    if (cell ~ /^[ \t:-]*$/) return  # the row under the header
    while (match(cell, /`[^`]+`/)) {
        code = substr(cell, RSTART + 1, RLENGTH - 2)
        cell = substr(cell, RSTART + RLENGTH)
        gsub(/\002/, "|", code)
        code = trim(code)
        ncells++
        if (index(corpus, code) == 0) {
            printf "doc_sync: %s:%d: tapegrad table cell not found verbatim in %s: %s\n", FILENAME, FNR, where, code
            bad++
        }
    }
}
function unterminated() {
    printf "doc_sync: %s:%d: code block never closed\n", fence_file, block_line
    bad++
}
BEGIN {
    corpus = "\n"
    what = mode == "code" ? "```cpp" : "```text (output of " name ")"
    where = mode == "code" ? "any file under examples/ or tests/" : "the output of " name
    marker = "<!-- output of " name " -->"
}
phase == "src" && FNR == 1 { corpus = corpus "\001\n"; nfiles++ }
phase == "src" { corpus = corpus trim($0) "\n"; next }
phase == "src_end" { next }
phase == "doc" && FNR == 1 {
    if (in_fence) unterminated()
    in_fence = 0; checking = 0; prev = ""; in_table = 0
    tables = mode == "code" && FILENAME ~ /(^|\/)docs\/libtorch\.md$/
}
phase == "doc" {
    line = $0; sub(/\r$/, "", line)
    if (tables && !in_fence) {
        if (line ~ /^[ \t]*[|]/) check_table_row(line)
        else in_table = 0
    }
    if (!in_fence && line ~ /^[ \t]*```/) {
        in_fence = 1; fence_file = FILENAME; block_line = FNR; block = ""
        lang = line; sub(/^[ \t]*```[ \t]*/, "", lang); sub(/[ \t].*$/, "", lang)
        if (mode == "code") checking = (lang == "cpp" || lang == "c++" || lang == "cxx" || lang == "cc")
        else checking = (lang == "text" && prev == marker)
        next
    }
    if (in_fence && line ~ /^[ \t]*```[ \t]*$/) {
        if (checking) check_block()
        in_fence = 0; checking = 0; prev = ""
        next
    }
    if (checking) block = block trim(line) "\n"
    if (!in_fence && trim(line) != "") prev = trim(line)
}
END {
    if (in_fence) unterminated()
    if (bad) {
        if (mode == "code")
            printf "doc_sync: %d problem(s) in %d C++ blocks%s; a block must be copied from the example or " \
                   "test it comes from (change that file, then quote it again)\n", bad, nblocks,
                   ncells ? " and " ncells " tapegrad table cells" : ""
        else
            printf "doc_sync: %d problem(s) in %d output blocks of %s; paste its current output\n",
                   bad, nblocks, name
        exit 1
    }
    if (mode == "code") {
        printf "doc_sync: all %d C++ blocks are quoted verbatim from %d source files\n", nblocks, nfiles
        if (ncells) printf "doc_sync: all %d tapegrad table cells of docs/libtorch.md appear verbatim there\n", ncells
    } else
        printf "doc_sync: all %d output blocks of %s match what it printed\n", nblocks, name
}
' phase=src "${corpus[@]}" phase=src_end /dev/null phase=doc "${docs[@]}"
