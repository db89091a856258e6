#!/usr/bin/env bash
# Load test of `videobert serve`'s search on loopback: wrk (Debian's package) against the same
# server code (`bench search-serve`, release build) over a synthetic index of N segments × E
# (seeded random unit embeddings, transcripts from a cooking vocabulary; see
# tools/bench/Sources/SearchBench.swift), C concurrent connections for D, queries rotating over
# 24 phrases, mode hybrid (BM25 top 100 in memory + the embedding top 100, the queries waiting
# batched into one sgemm pass over the memory-mapped N × E matrix, + RRF; Index/SearchEngine.swift)
# unless MODE says otherwise. RANKING_THREADS (default 1) threads rank the batches. wrk and the server share the machine's cores. Bounded in time:
# the server is stopped by its pid when wrk ends.
#
#   tools/bench/search.sh [SEGMENTS] [DIM] [CONNECTIONS] [DURATION] [MODE]
#   tools/bench/search.sh 100000 256 200 30s hybrid
#   SCRATCH=.build-rel RANKING_THREADS=2 tools/bench/search.sh 100000 256 200 30s hybrid
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
E=${2:-256}
C=${3:-200}
D=${4:-30s}
MODE=${5:-hybrid}
command -v wrk >/dev/null || { echo "search.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
SCRATCH=${SCRATCH:-.build}   # SwiftPM's build folder (SCRATCH=.build-rel keeps a release build beside a debug one)
swift build -c release --product bench --scratch-path "$SCRATCH" >&2
DIR=/tmp/videobert-bench-search-$N-$E
OUT=$(mktemp)
LUA=""
"$SCRATCH"/release/bench search-serve --segments "$N" --dim "$E" --out "$DIR" --port 0 --ranking-threads "${RANKING_THREADS:-1}" > "$OUT" &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -f "$OUT" "$LUA"' EXIT
for _ in $(seq 1 600); do grep -q serving "$OUT" && break; sleep 0.5; done
URL=$(grep -o 'http://[0-9.:]*/' "$OUT")
[ -n "$URL" ] || { echo "search.sh: the server did not start" >&2; exit 1; }
LUA=$(mktemp --suffix=.lua)
cat > "$LUA" <<LUA
local verbs = {"stir", "cut", "pour", "flip", "shake", "roll", "mash", "peel", "sprinkle", "whisk", "slice", "boil"}
local nouns = {"tomatoes", "onions"}
local i = 0
request = function()
  i = i + 1
  local q = verbs[(i % #verbs) + 1] .. "+the+" .. nouns[(i % #nouns) + 1]
  return wrk.format("GET", "/api/search?q=" .. q .. "&top=10&mode=$MODE")
end
response = function(status, headers, body)
  if status ~= 200 then io.stderr:write("status " .. status .. "\n") end
end
LUA
echo "search.sh: $N segments × $E, $C connections, $D, mode $MODE, $(nproc) cores" >&2
curl -s "${URL}healthz" >&2 || true; echo >&2
wrk -t2 -c"$C" -d"$D" --latency --timeout 10s -s "$LUA" "$URL"
