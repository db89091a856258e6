#!/usr/bin/env bash
# Data-parallel pretraining, 1 rank against 2 ranks on this machine, side by side in one run:
#   1 rank:  videobert pretrain, batch B,   VIDEOBERT_THREADS=T1 (OpenBLAS and our loops)
#   2 ranks: mpirun -np 2 videobert pretrain, batch B/2 per rank (the same global batch of B),
#            VIDEOBERT_THREADS=T2 per rank
# Same recipe, corpus, steps and seed, so both compute the same training steps. Prints steps/s
# of each (wall time of the training loop, from metrics.jsonl) and the bytes each rank sent and
# received per step through MPI (metrics.jsonl's bytes_communicated / steps).
#
#   tools/bench/mpi.sh [RECIPE] [STEPS] [BATCH] [T1] [T2]
#
# Defaults: Recipes/demo.yaml, 300 steps, batch 32, 2 threads for 1 rank, 1 thread per rank.
# The corpus: the built-in demo corpus (120 videos), rendered and tokenized once under /tmp.
set -euo pipefail
cd "$(dirname "$0")/../.."
RECIPE=${1:-Recipes/demo.yaml}
STEPS=${2:-300}
BATCH=${3:-32}
T1=${4:-2}
T2=${5:-1}
W=/tmp/videobert-bench-mpi
swift build -c release --product videobert >&2
VB=$PWD/.build/release/videobert
if [ ! -f $W/tokens/index.json ]; then
  $VB demo-corpus --out $W/corpus --videos 120 --size 64x64 >&2
  $VB tokenize --corpus $W/corpus/manifest.jsonl --recipe Recipes/tokenize-demo.yaml --out $W/tokens >&2
fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none
COMMON=(pretrain --recipe "$RECIPE" --set corpus=$W/tokens --set train.steps=$STEPS --set eval.every=0
        --set eval.batches=1 --set checkpoint.every=$STEPS --set log_every=$STEPS --json)
rm -rf $W/one $W/two
VIDEOBERT_THREADS=$T1 $VB "${COMMON[@]}" --set out=$W/one --set train.batch_size=$BATCH > $W/one.json
VIDEOBERT_THREADS=$T2 mpirun -np 2 --oversubscribe --allow-run-as-root --bind-to none \
  -x VIDEOBERT_THREADS -x OMPI_MCA_btl_vader_single_copy_mechanism \
  $VB "${COMMON[@]}" --set out=$W/two --set train.batch_size=$((BATCH / 2)) > $W/two.json
python3 - "$W" "$STEPS" "$BATCH" "$T1" "$T2" <<'PY'
import json, sys
w, steps, batch, t1, t2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def last_train(run):
    rows = [json.loads(l) for l in open(f"{w}/{run}/metrics.jsonl") if l.strip()]
    return [r for r in rows if r["kind"] == "train"][-1]
one, two = last_train("one"), last_train("two")
s1, s2 = steps / one["seconds"], steps / two["seconds"]
print(f"1 rank  × batch {batch}, {t1} thread(s):        {s1:6.2f} steps/s  final loss {one['loss']:.4f}")
print(f"2 ranks × batch {batch // 2}, {t2} thread(s) each:  {s2:6.2f} steps/s  final loss {two['loss']:.4f}")
print(f"ratio (2 ranks / 1 rank): {s2 / s1:.2f}×")
print(f"bytes communicated per step per rank: {two['bytes_communicated'] / steps / 1e6:.2f} MB")
PY
