#!/usr/bin/env python3
"""S3D clip features, batch 8 × 32 frames × 224²: videobert's Backbones.S3D vs torchvision's S3D, side by side.

Usage (from the repository root, after `swift build -c release --product bench`; .venv-tv as in
tools/fixtures/resnet.py, for torchvision's model code):
    .venv-tv/bin/python tools/bench/s3d.py [--batch 8 --frames 32 --size 224 --reps 1 --rounds 1]

Both sides compute the 1024-d feature (mean over time and space of avgpool(features(x))) of a batch of
normalised clips of the same size, fp32, 2 threads, eval mode / no grad. The torch side is torchvision's
s3d.py in both memory formats (NCDHW and channels_last_3d); videobert folds BatchNorm into the convolutions
at load. The first run of each side is a warm-up; the sides alternate for --rounds rounds; each side's time
is its best batch. Prints one JSON line per side and the ratios (PyTorch seconds / videobert seconds:
> 1 means videobert is faster).
"""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import types

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def torch_side(args, channels_last):
    import torch
    if "torchvision" not in sys.modules:
        spec = importlib.util.find_spec("torchvision")
        pkg = types.ModuleType("torchvision")
        pkg.__path__ = [os.path.dirname(spec.origin)]
        sys.modules["torchvision"] = pkg             # skip __init__ (its compiled ops do not load)
    from torchvision.models.video.s3d import s3d
    torch.manual_seed(0)
    m = s3d().eval()
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    if channels_last:
        m = m.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)

    def features():
        with torch.no_grad():
            return torch.mean(m.avgpool(m.features(x)), dim=(2, 3, 4))

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
    for name, default in [("batch", 8), ("frames", 32), ("size", 224), ("reps", 1), ("rounds", 1), ("threads", 2)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "bench"))
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        sys.exit(f"error: {args.bench}: not built; run `swift build -c release --product bench` first")
    import torch
    torch.set_num_threads(args.threads)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), VIDEOBERT_THREADS=str(args.threads))
    sides = {"ncdhw": torch_side(args, False), "channels_last_3d": torch_side(args, True)}
    rounds = {"videobert": [], "ncdhw": [], "channels_last_3d": []}
    for _ in range(args.rounds):
        out = subprocess.run([args.bench, "s3d", "--batch", str(args.batch), "--frames", str(args.frames), "--size", str(args.size),
                              "--reps", str(args.reps)], check=True, capture_output=True, text=True, env=env)
        run = json.loads(out.stdout)
        rounds["videobert"].append((run["seconds_best"], run["seconds_median"]))
        for name, timer in sides.items():
            rounds[name].append(timer())
    result = {}
    for name, rs in rounds.items():
        best = min(r[0] for r in rs)
        result[name] = best
        print(json.dumps({"side": name, "seconds_best": best, "seconds_median": statistics.median(r[1] for r in rs),
                          "clips_per_s_best": args.batch / best}))
    print(json.dumps({"ratio_vs_ncdhw_best": result["ncdhw"] / result["videobert"],
                      "ratio_vs_channels_last_3d_best": result["channels_last_3d"] / result["videobert"],
                      "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch, "frames": args.frames,
                      "note": "PyTorch seconds / videobert seconds; > 1 means videobert is faster"}))


if __name__ == "__main__":
    main()
