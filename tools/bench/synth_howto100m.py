#!/usr/bin/env python3
"""A synthetic HowTo100M-shaped input for the scale benchmarks (issue 18, BENCHMARKS.md "Scale").

Writes what `videobert tokenize` reads for HowTo100M with imported features
(Recipes/tokenize-howto100m-s3d.yaml): `raw_caption.json` ({video_id: {start, end, text}}, ASR
without punctuation) and `features/<video_id>.npy`, float16 [rows, dim], one row per second.

Scale: HowTo100M is 1.22 M videos, 136 M clips; `--fraction 1000` is 1/1000 of it (1,220 videos,
~136 k clips), `--fraction 100` is 1/100 (12,200 videos, 1.36 M clips; 1024-d float16 features
are ~2.8 GB). Clip counts per video vary (uniform in [0.5, 1.5] × the mean of 111.5); each video
draws its features around a few of 64 "topics" (Gaussian), so k-means finds structure; sentences
are 8-16 words from 2,000 whole words of BERT's vocabulary (Vocab/, tools/setup), one every ~4 s. Seeded: the same arguments write the same
bytes. Memory: one video at a time. Write it under /tmp, never into the repository:

    /work/main/.venv/bin/python tools/bench/synth_howto100m.py --fraction 1000 --out /tmp/howto-1000
"""
import argparse
import json
import os

import numpy as np

VIDEOS, CLIPS = 1_220_000, 136_000_000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fraction", type=int, required=True, help="1/N of HowTo100M (1000, 300, 100)")
    ap.add_argument("--out", required=True, help="output folder (under /tmp)")
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if os.path.abspath(args.out).startswith(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))):
        ap.error("write the synthetic corpus outside the repository (e.g. /tmp)")
    videos = VIDEOS // args.fraction
    mean_clips = CLIPS / VIDEOS
    rng = np.random.default_rng(args.seed)
    topics = rng.standard_normal((64, args.dim)).astype(np.float32)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "Vocab", "bert-base-uncased.txt"), encoding="utf-8") as f:
        words = [w for w in f.read().split("\n") if w.isalpha() and w.isascii()][1000:3000]
    feat_dir = os.path.join(args.out, "features")
    os.makedirs(feat_dir, exist_ok=True)
    captions = {}
    total = 0
    for v in range(videos):
        vid = f"v{v:07d}"
        rows = int(round(mean_clips * rng.uniform(0.5, 1.5)))
        mine = rng.choice(64, size=3, replace=False)
        which = mine[rng.integers(0, 3, size=rows)]
        x = topics[which] + 0.5 * rng.standard_normal((rows, args.dim), dtype=np.float32)
        tmp = os.path.join(feat_dir, f".{vid}.npy.tmp")
        with open(tmp, "wb") as f:
            np.save(f, x.astype(np.float16))
        os.replace(tmp, os.path.join(feat_dir, f"{vid}.npy"))
        starts = np.arange(0.0, max(rows - 2, 1), 4.0)
        captions[vid] = {
            "start": [round(float(s), 2) for s in starts],
            "end": [round(float(min(s + 3.5, rows)), 2) for s in starts],
            "text": [" ".join(words[i] for i in rng.integers(0, len(words), size=rng.integers(8, 17))) for _ in starts],
        }
        total += rows
    tmp = os.path.join(args.out, ".raw_caption.json.tmp")
    with open(tmp, "w") as f:
        json.dump(captions, f)
    os.replace(tmp, os.path.join(args.out, "raw_caption.json"))
    print(f"{videos} videos, {total} clips × {args.dim} float16 ({total * args.dim * 2 / 1e9:.2f} GB) in {args.out}")


if __name__ == "__main__":
    main()
