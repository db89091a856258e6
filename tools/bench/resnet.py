#!/usr/bin/env python3
"""ResNet-152 per-frame features, batch 32 at 224×224: videobert's Backbones.ResNet vs torchvision, side by side.

Usage (from the repository root, after `swift build -c release --product bench`; .venv-tv as in
tools/fixtures/resnet.py, for torchvision's model code):
    .venv-tv/bin/python tools/bench/resnet.py [--arch resnet152 --batch 32 --size 224 --reps 3 --rounds 2]

Both sides compute the features (the input of fc: layer4 → global average pool) of the same-sized
batch of normalised images, fp32, 2 threads, eval mode / no grad. The torch side is torchvision's
resnet.py in both memory formats (NCHW and channels_last); videobert folds BatchNorm into the
convolutions at load (torch's eval BatchNorm is a separate pass; `torch.fx`-free, as users run it).
The sides alternate for --rounds rounds; each side's time is its best batch. Prints one JSON line
per side and the ratios (PyTorch seconds / videobert seconds: > 1 means videobert is faster).
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
    from torchvision.models import resnet as tv
    torch.manual_seed(0)
    m = getattr(tv, args.arch)().eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def features():
        with torch.no_grad():
            h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            h = m.layer4(m.layer3(m.layer2(m.layer1(h))))
            return torch.flatten(m.avgpool(h), 1)

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
    ap.add_argument("--arch", default="resnet152")
    for name, default in [("batch", 32), ("size", 224), ("reps", 3), ("rounds", 2), ("threads", 2)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "bench"))
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        sys.exit(f"error: {args.bench}: not built; run `swift build -c release --product bench` first")
    import torch
    torch.set_num_threads(args.threads)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), VIDEOBERT_THREADS=str(args.threads))
    sides = {"nchw": torch_side(args, False), "channels_last": torch_side(args, True)}
    rounds = {"videobert": [], "nchw": [], "channels_last": []}
    for _ in range(args.rounds):
        out = subprocess.run([args.bench, "resnet", "--arch", args.arch, "--batch", str(args.batch), "--size", str(args.size),
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
                          "frames_per_s_best": args.batch / best}))
    print(json.dumps({"ratio_vs_nchw_best": result["nchw"] / result["videobert"],
                      "ratio_vs_channels_last_best": result["channels_last"] / result["videobert"],
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "note": "PyTorch seconds / videobert seconds; > 1 means videobert is faster"}))


if __name__ == "__main__":
    main()
