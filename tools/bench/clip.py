#!/usr/bin/env python3
"""CLIP ViT per-frame features, batch 32 at 224×224: videobert's Backbones.CLIPVisionTower vs transformers'
CLIPVisionModelWithProjection, side by side.

Usage (from the repository root, after `swift build -c release --product bench`; the shared venv has transformers):
    /work/main/.venv/bin/python tools/bench/clip.py [--preset clip-vit-b32 --batch 32 --reps 3 --rounds 2 --threads 2]

Both sides compute the projected image embeddings (`image_embeds`) of the same-sized batch of normalised
images, fp32, 2 threads, eval mode / no grad, random weights of the preset's architecture (transformers'
defaults for ViT-B/32; patch 16 for B/16; the L/14 sizes). transformers runs with its default attention
(sdpa) and with eager attention. The sides alternate for --rounds rounds; each side's time is its best batch.
Prints one JSON line per side and the ratios (PyTorch seconds / videobert seconds: > 1 means videobert is faster).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARCH = {"clip-vit-b32": dict(patch_size=32), "clip-vit-b16": dict(patch_size=16),
        "clip-vit-l14": dict(patch_size=14, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                             num_attention_heads=16, projection_dim=768)}


def torch_side(args, attn):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    torch.manual_seed(0)
    config = CLIPVisionConfig(**ARCH[args.preset])
    config._attn_implementation = attn
    m = CLIPVisionModelWithProjection(config).eval()
    x = torch.randn(args.batch, 3, 224, 224)

    def features():
        with torch.no_grad():
            return m(pixel_values=x).image_embeds

    def run():
        features()                                   # warm-up
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            features()
            times.append(time.perf_counter() - t0)
        return min(times), statistics.median(times)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="clip-vit-b32", choices=sorted(ARCH))
    for name, default in [("batch", 32), ("reps", 3), ("rounds", 2), ("threads", 2)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "bench"))
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        sys.exit(f"error: {args.bench}: not built; run `swift build -c release --product bench` first")
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), VIDEOBERT_THREADS=str(args.threads))
    sides = {"sdpa": torch_side(args, "sdpa"), "eager": torch_side(args, "eager")}
    rounds = {"videobert": [], "sdpa": [], "eager": []}
    for _ in range(args.rounds):
        out = subprocess.run([args.bench, "clip", "--preset", args.preset, "--batch", str(args.batch), "--reps", str(args.reps)],
                             check=True, capture_output=True, text=True, env=env)
        run = json.loads(out.stdout)
        rounds["videobert"].append((run["seconds_best"], run["seconds_median"]))
        for name, timer in sides.items():
            rounds[name].append(timer())
    result = {}
    for name, rs in rounds.items():
        best = min(r[0] for r in rs)
        result[name] = best
        print(json.dumps({"side": name, "seconds_best": best, "seconds_median": statistics.median(r[1] for r in rs),
                          "frames_per_s_best": args.batch / best}))
    print(json.dumps({"preset": args.preset, "ratio_vs_sdpa_best": result["sdpa"] / result["videobert"],
                      "ratio_vs_eager_best": result["eager"] / result["videobert"],
                      "torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(),
                      "note": "PyTorch seconds / videobert seconds; > 1 means videobert is faster"}))


if __name__ == "__main__":
    main()
