#!/usr/bin/env bash
# Behaviour check for refactors: runs a small end-to-end pipeline with a fixed seed (demo corpus,
# tokenize, pretrain Recipes/tiny.yaml and Recipes/cbt-tiny.yaml, a caption fine-tune from each,
# retrieval, inspect) and writes the sha256 of every checkpoint file and the commands' JSON outputs.
#
#   tools/check-same-bytes.sh record OUT.sha256     # before the change
#   tools/check-same-bytes.sh check  OUT.sha256     # after: exits 1 and shows the diff when bytes differ
#
# Uses the debug build in .build (run `swift build` first); BIN=path overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
mode=${1:?record|check}; ref=${2:?file of sums}
BIN=${BIN:-$ROOT/.build/debug/videobert}
# A fixed work folder: checkpoints record their paths (recipe.yaml, vocab.json), so the paths must
# not change between the two runs.
W=$ROOT/.build/same-bytes-work
rm -rf "$W"; mkdir -p "$W"
run() { "$BIN" "$@" 2>>"$W/log" || { echo "check-same-bytes: failed: videobert $*" >&2; tail -5 "$W/log" >&2; exit 2; }; }

run demo-corpus --out "$W/c" --videos 4 --size 32x32 --fps 6 >/dev/null
run tokenize --corpus "$W/c/manifest.jsonl" --out "$W/t" --recipe Recipes/tokenize-tiny.yaml \
    --set text.vocab="$ROOT/Vocab/bert-base-uncased.txt" --set store.frames=true --set store.frame_size=16 \
    --set store.frames_per_clip=2 >/dev/null
run pretrain --recipe Recipes/tiny.yaml --set corpus="$W/t" --set out="$W/vb" --set train.steps=12 \
    --set eval.split=train --json > "$W/vb.json"
run pretrain --recipe Recipes/cbt-tiny.yaml --set corpus="$W/t" --set out="$W/cbt" --set train.steps=6 \
    --set train.batch_size=2 --set eval.split=train --set eval.batches=1 --set retrieval.max_pairs=4 --json > "$W/cbt.json"
VB=$W/vb/checkpoints/step-0000012; CBT=$W/cbt/checkpoints/step-0000006
run finetune caption --recipe Recipes/finetune-caption-demo.yaml --set init="$VB" --set corpus="$W/t" \
    --set annotations="$W/c/annotations.json" --set out="$W/cap" --set train.steps=4 --set train.batch_size=4 \
    --set train.warmup_steps=1 --set data.eval_split=train --set eval.batches=1 --set data.max_video_tokens=8 --json > "$W/cap.json"
run finetune caption --recipe Recipes/finetune-caption-cbt-demo.yaml --set init="$CBT" --set corpus="$W/t" \
    --set annotations="$W/c/annotations.json" --set out="$W/capcbt" --set train.steps=3 --set train.batch_size=2 \
    --set train.warmup_steps=1 --set data.eval_split=train --set eval.batches=1 --json > "$W/capcbt.json"
# CBT retrieval over all segments of the split (--max 0) with the recipe's text length: the same
# segments whether they are taken in corpus order or as a seeded subset.
for s in pooled cross; do
  run retrieve --checkpoint "$CBT" --corpus "$W/t" --split train --max 0 --max-text-tokens 16 --cbt-scorer $s --json > "$W/retrieve-cbt-$s.json"
done
run retrieve --checkpoint "$VB" --corpus "$W/t" --split train --max 4 --json > "$W/retrieve-vb.json"
run caption --checkpoint "$W/cap/checkpoints/step-0000004" --corpus "$W/t" --annotations "$W/c/annotations.json" \
    --split train --beam 2 --max-tokens 4 --out "$W/captions.json" --json > "$W/caption.json"
run caption --checkpoint "$W/capcbt/checkpoints/step-0000003" --corpus "$W/t" --annotations "$W/c/annotations.json" \
    --split train --beam 2 --max-tokens 4 --out "$W/captions-cbt.json" --json > "$W/caption-cbt.json"
for d in "$VB" "$CBT" "$W/cap/checkpoints/step-0000004" "$W/capcbt/checkpoints/step-0000003" "$ROOT/models/minilm-l6-h384-uncased"; do
  run inspect "$d" --json > "$W/inspect-$(basename "$(dirname "$(dirname "$d")")")-$(basename "$d").json"
done

# Timings vary between runs: hash checkpoint files, and the JSON outputs with timing keys dropped.
sums=$W/sums
# (visual_vocab/vocab.json records how long the k-means fit took.)
( cd "$W" && find vb cbt cap capcbt -path '*/checkpoints/*' -type f | LC_ALL=C sort | while read -r f; do
    case "$f" in */visual_vocab/vocab.json) grep -v '"seconds"' "$f" | sha256sum | sed "s#-#$f#" ;; *) sha256sum "$f" ;; esac
  done ) > "$sums"
for j in "$W"/*.json; do
  sed -e "s#$W#WORK#g" -e "s#$ROOT#ROOT#g" "$j" \
    | "${PYTHON:-python3}" -c 'import json,sys
def strip(o):
    if isinstance(o, dict): return {k: strip(v) for k, v in o.items() if not any(t in k for t in ("seconds", "per_sec", "elapsed", "time"))}
    if isinstance(o, list): return [strip(v) for v in o]
    return o
print(json.dumps(strip(json.load(sys.stdin)), sort_keys=True))' | sha256sum | sed "s#-#$(basename "$j")#" >> "$sums"
done
if [ "$mode" = record ]; then cp "$sums" "$ref"; echo "check-same-bytes: recorded $(wc -l < "$sums") sums in $ref"
else
  if diff "$ref" "$sums"; then echo "check-same-bytes: all $(wc -l < "$sums") sums identical"
  else mkdir -p "${KEEP:-/tmp}/same-bytes-last" && cp -r "$W"/*.json "${KEEP:-/tmp}/same-bytes-last/"; echo "check-same-bytes: DIFFERENT (JSON outputs kept in ${KEEP:-/tmp}/same-bytes-last)" >&2; exit 1; fi
fi
