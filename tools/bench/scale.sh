#!/usr/bin/env bash
# Scale benchmark (issue 18, BENCHMARKS.md "Scale"): a synthetic HowTo100M-shaped input at 1/N of
# HowTo100M (tools/bench/synth_howto100m.py: float16 1024-d features, one row per second, ASR-like
# captions) is tokenized with imported features stored as float16 (memory-mapped when read back),
# then CBT (frontend.source: features) and a tiny VideoBERT train on it. For each stage: wall time
# and peak RSS from /usr/bin/time -v; for training, steps/s between the first and last logged
# train steps (metrics.jsonl, so start-up is excluded). Run at two sizes to see whether RSS is flat:
#
#   swift build -c release --product videobert
#   tools/bench/scale.sh 1000 300          # 1/1000 and 1/300 of HowTo100M, under /tmp
#
# Settings held equal across sizes: k-means fit on a 100,000-clip sample (kmeans.max_points),
# 12^3 = 1,728 visual words; CBT (Recipes/cbt-tiny.yaml with frontend.source: features, batch 8:
# small models, so the data path weighs): 16 steps, log every 4; VideoBERT (Recipes/tiny.yaml):
# 60 steps, log every 20.
#
# SHARDS=N tokenizes into N shards (`tokenize --shards N`, read back as one corpus); LOADER=inline
# draws batches on the training thread instead of the background loader (`train.loader`). The
# training lines also print the data wait per step (metrics.jsonl's data_wait_s).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/release/videobert}
SHARDS=${SHARDS:-1}
LOADER=${LOADER:-background}
PY=${PY:-/work/main/.venv/bin/python}
[ -x "$BIN" ] || { echo "scale.sh: build first: swift build -c release --product videobert" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: tools/bench/scale.sh FRACTION [FRACTION...]  (e.g. 1000 300)" >&2; exit 1; }

measure() {  # name logfile command...: prints "name  wall  peak-RSS"
    local name=$1 log=$2; shift 2
    /usr/bin/time -v -o "$log.time" "$@" > "$log" 2>&1 || { echo "scale.sh: $name failed, see $log" >&2; tail -5 "$log" >&2; exit 1; }
    local wall rss
    wall=$(grep "Elapsed (wall clock)" "$log.time" | awk '{print $NF}')
    rss=$(grep "Maximum resident set size" "$log.time" | awk '{printf "%.0f MB", $NF/1024}')
    printf '1/%-8s %-10s wall %-9s peak RSS %s' "$FRACTION" "$name" "$wall" "$rss"
}

steps_per_s() {  # metrics.jsonl → steps/s between the first and last train lines
    "$PY" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t = [(r["step"], r["seconds"]) for r in rows if r.get("kind") == "train" and "seconds" in r]
(s0, t0), (s1, t1) = t[0], t[-1]
w = [r["data_wait_s"] for r in rows if r.get("kind") == "train" and "data_wait_s" in r]
wait = f", data wait {1000 * sum(w) / len(w):.1f} ms/step" if w else ""
print(f"  {(s1 - s0) / (t1 - t0):.2f} steps/s{wait}")' "$1"
}

for FRACTION in "$@"; do
    D=/tmp/videobert-scale-$FRACTION
    [ -f "$D/raw_caption.json" ] || "$PY" tools/bench/synth_howto100m.py --fraction "$FRACTION" --out "$D"
    rm -rf "$D/tokens" "$D/cbt" "$D/videobert"
    measure tokenize "$D/tokenize.log" "$BIN" tokenize --corpus "$D/raw_caption.json" --out "$D/tokens" \
        --recipe Recipes/tokenize-howto100m-s3d.yaml --set features.dir="$D/features" \
        --set store.features=true --set store.features_dtype=float16 \
        --set kmeans.depth=3 --set kmeans.max_points=100000 --shards "$SHARDS"
    echo "  ($(du -shc "$D"/tokens/clip_features.npy "$D"/tokens/shards/*/clip_features.npy 2>/dev/null | tail -1 | cut -f1) clip_features.npy, $SHARDS shard(s))"
    measure cbt "$D/cbt.log" "$BIN" pretrain --recipe Recipes/cbt-tiny.yaml --set frontend.source=features \
        --set corpus="$D/tokens" --set out="$D/cbt" --set train.steps=16 --set log_every=4 --set eval.every=0 \
        --set eval.batches=1 --set retrieval.max_pairs=32 --set checkpoint.every=16 --set checkpoint.keep=1 --set train.loader="$LOADER"
    steps_per_s "$D/cbt/metrics.jsonl"
    measure videobert "$D/videobert.log" "$BIN" pretrain --recipe Recipes/tiny.yaml --set corpus="$D/tokens" --set out="$D/videobert" \
        --set train.steps=60 --set log_every=20 --set eval.every=0 --set eval.batches=1 --set checkpoint.every=60 --set checkpoint.keep=1 \
        --set train.loader="$LOADER"
    steps_per_s "$D/videobert/metrics.jsonl"
done
