#!/usr/bin/env bash
# Data-parallel pretraining across the hosts of the namespace cluster (tools/cluster/cluster),
# side by side in one run: the same recipe, corpus, steps, seed and global batch of B examples,
#   local:   2 ranks in one namespace (TCP over loopback: the compute and the allreduce, no link)
#   RATE:    2 hosts, one rank each, links shaped to RATE (for each RATE given)
# and, for each, seconds per step, the bytes each rank hands to the allreduce per step, and the
# bandwidth-bound ideal for a ring allreduce over that link: 2·(N−1)/N · bytes / rate. The
# communication cost of a link is (its step time − the local step time); efficiency = ideal /
# measured communication cost. Needs root (namespaces). Prints one JSON object per row.
#
#   tools/bench/cluster.sh [RECIPE] [STEPS] [BATCH] [RATES]
#
# Defaults: Recipes/demo.yaml, 100 steps, global batch 32, rates "10gbit 1gbit".
# The corpus: the built-in demo corpus (120 videos), rendered and tokenized once under /tmp.
set -euo pipefail
cd "$(dirname "$0")/../.."
RECIPE=${1:-Recipes/demo.yaml}
STEPS=${2:-100}
BATCH=${3:-32}
RATES=${4:-"10gbit 1gbit"}
W=/tmp/videobert-bench-cluster
swift build -c release --product videobert >&2
VB=$PWD/.build/release/videobert
if [ ! -f $W/tokens/index.json ]; then
  $VB demo-corpus --out $W/corpus --videos 120 --size 64x64 >&2
  $VB tokenize --corpus $W/corpus/manifest.jsonl --recipe Recipes/tokenize-demo.yaml --out $W/tokens >&2
fi
COMMON=(pretrain --recipe "$RECIPE" --set corpus=$W/tokens --set train.steps=$STEPS --set eval.every=0
        --set eval.batches=1 --set checkpoint.every=$STEPS --set log_every=$STEPS --json
        --set train.batch_size=$((BATCH / 2)))
export VIDEOBERT_THREADS=1
row() {  # name, run folder, rate in bit/s (0: none)
  python3 - "$1" "$2" "$3" "$STEPS" <<'PY'
import json, sys
name, run, rate, steps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if l.strip()]
last = [r for r in rows if r.get("kind") == "train"][-1]
per_step = last["seconds"] / steps
sent = last.get("bytes_communicated", 0) / steps
out = {"run": name, "seconds_per_step": round(per_step, 4), "bytes_per_step_per_rank": int(sent)}
if rate > 0:
    out["ideal_allreduce_s"] = round(sent / (rate / 8), 4)   # bytes_communicated already counts 2(N-1)/N
print(json.dumps(out))
PY
}
rate_bits() { echo "$1" | awk '{v=$1+0; u=tolower($1); sub(/^[0-9.]+/,"",u); m=(u~/^g/)?1e9:(u~/^m/)?1e6:(u~/^k/)?1e3:1; print v*m}'; }

tools/cluster/cluster up 1 --name bl >&2
rm -rf $W/local
tools/cluster/cluster run --name bl --np-per-host 2 -- "$VB" "${COMMON[@]}" --set out=$W/local > /dev/null
tools/cluster/cluster down --name bl
row local $W/local 0
for RATE in $RATES; do
  tools/cluster/cluster up 2 --rate "$RATE" --name bc >&2
  rm -rf $W/$RATE
  tools/cluster/cluster run --name bc -- "$VB" "${COMMON[@]}" --set out=$W/$RATE > /dev/null
  tools/cluster/cluster down --name bc
  row "2 hosts at $RATE" $W/$RATE "$(rate_bits "$RATE")"
done
