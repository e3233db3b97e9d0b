#!/usr/bin/env bash
# The project's test command (README, .ci/run): gofmt, vet, race-enabled tests of
# every package, then a short run of every fuzz target (seeds committed in
# testdata/fuzz). FUZZTIME overrides the per-target fuzz time (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}

echo "== gofmt"
unformatted=$(gofmt -l .)
[ -z "$unformatted" ] || { echo "gofmt would change:"; echo "$unformatted"; exit 1; }

echo "== go vet"
go vet -composites=false ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

echo "== deploy/k8s (its own module: manifests, provisioner hook)"
(cd deploy/k8s && go vet ./... && go test -count=1 ./...)

echo "== fuzz (${FUZZTIME} per target)"
# Every func FuzzXxx in a _test.go file, with its package directory.
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | sort | while read -r f; do
  dir=$(dirname "$f")
  for name in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //'); do
    echo "-- $dir $name"
    ok=0
    ft=$FUZZTIME
    for attempt in 1 2 3; do
      if go test -run='^$' -fuzz="^${name}\$" -fuzztime="$ft" "$dir" >/tmp/shoal-fuzz.log 2>&1; then
        ok=1; break
      fi
      # A crasher found by the fuzzer is written to testdata and always fails
      # the run. Anything else (the fuzzing engine's own worker hang or
      # termination on a loaded machine, or "context deadline exceeded"
      # when the seed corpus alone outlasts the fuzz time) is retried,
      # twice at most, with 30 s.
      grep -q "Failing input written to" /tmp/shoal-fuzz.log && break
      [ "$attempt" = 3 ] && break
      echo "   (fuzzing engine failure without a crasher, retrying with 30s)"
      tail -5 /tmp/shoal-fuzz.log
      ft=30s
    done
    [ "$ok" = 1 ] || { cat /tmp/shoal-fuzz.log; exit 1; }
    tail -1 /tmp/shoal-fuzz.log
  done
done
echo "== all tests passed"
