#!/usr/bin/env bash
# Set up rr and run the short demo (no container): bash tools/quick-demo.sh
# A short story: create a dataset, record a run with inputs and outputs, change the code,
# replay with rr rerun, and look at the history.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/rr-demo-XXXXXX")
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

cd "$work"
step rr create -c text2git demo
cd demo
mkdir -p data code
printf 'the quick brown fox\njumps over the lazy dog\n' > data/part1.txt
printf 'a second file\nwith three\nlines\n' > data/part2.txt
cat > code/count.sh <<'SH'
#!/bin/sh
# count lines of every input
wc -l "$@" | sed '$d'
SH
step rr save -m "Add data and counting script" --version-tag ready
step rr run -m "Count lines" -i 'data/*.txt' -o counts.txt "sh code/count.sh {inputs} > {outputs}"
step cat counts.txt
step git log -1 --format=%B
cat > code/count.sh <<'SH'
#!/bin/sh
# count words of every input
wc -w "$@" | sed '$d'
SH
step rr save -m "Count words instead of lines" code/count.sh
step rr rerun --since=ready
step cat counts.txt
step git log --oneline --graph
step rr rerun --report --since=ready
echo
echo "demo dataset left at $work/demo"
