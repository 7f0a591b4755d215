#!/usr/bin/env bash
# Runs every Fuzz* target in the module for DURATION each (default 30s): ./scripts/fuzz.sh 30s
# Targets are found with `go test -list '^Fuzz' ./...`; each runs on its own (go test -fuzz takes
# one target in one package). New crashers land in the package's testdata/fuzz/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-30s}"
go="${GO:-go}"

# `go test -list` prints a package's matching names, then "ok <pkg> <time>" for that package.
# A package that does not build is reported and fails the run, but the others are still fuzzed.
listfailed=0
listing=$("$go" test -list '^Fuzz' ./...) || { echo "fuzz: some packages could not be listed" >&2; listfailed=1; }
targets=$(awk '/^Fuzz/ { names = names " " $1; next }
               /^ok[ \t]/ { n = split(names, a, " "); for (i = 1; i <= n; i++) print $2, a[i]; names = "" }' <<<"$listing")
if [[ -z "$targets" ]]; then
  echo "fuzz: no Fuzz targets found"
  exit "$listfailed"
fi

# Go before 1.27 can end a duration-bound fuzz run with a bare "context deadline exceeded" and no
# failing input: a race in its fuzzing coordinator at the end of -fuzztime under CPU load
# (go.dev/issue/75804, fixed in Go 1.27). Such a run counts as passed only if nothing was
# written to the target's testdata/fuzz/ and the corpus then replays clean; any other failure,
# or a written input, fails the run.
failed=()
while read -r pkg name; do
  echo "fuzz: $pkg $name for $dur"
  dir=$("$go" list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$name
  before=$({ ls "$dir" 2>/dev/null || true; } | wc -l)
  if out=$("$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$dur" "$pkg" 2>&1); then
    printf '%s\n' "$out"
    continue
  fi
  printf '%s\n' "$out"
  after=$({ ls "$dir" 2>/dev/null || true; } | wc -l)
  if [[ "$after" == "$before" ]] && grep -q '^    context deadline exceeded$' <<<"$out" &&
    ! grep -q 'Failing input written to' <<<"$out" &&
    "$go" test -run "^${name}\$" "$pkg" >/dev/null; then
    echo "fuzz: $pkg $name: Go's fuzzing deadline race (go.dev/issue/75804), no failing input; the corpus replays clean"
    continue
  fi
  failed+=("$pkg $name")
done <<<"$targets"

if ((${#failed[@]})); then
  printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
  exit 1
fi
if ((listfailed)); then
  exit 1
fi
echo "fuzz: all targets passed"
