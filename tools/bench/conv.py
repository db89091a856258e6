#!/usr/bin/env python3
"""The CBT visual front-end, forward + backward: videobert's ConvFrontEnd vs the same torch module, side by side.

Usage (from the repository root, after `swift build -c release --product bench`):
    /work/main/.venv/bin/python tools/bench/conv.py [--clips 32 --F 4 --S 32 --channels 32,64,128 --D 768 --reps 10]

Both sides take the same batch of uint8 frames [clips, F, S, S, 3] (how the corpus stores them),
normalise them with the ImageNet statistics, run conv3×3 → ReLU → maxpool2 → conv3×3 → ReLU →
maxpool2 → conv3×3 → ReLU → global mean → mean over the F frames → linear to D, and backpropagate
a given output gradient into every parameter (not into the frames). The torch side is an
nn.Module in fp32 on 2 threads, in both memory formats: NCHW (contiguous) and channels_last
(NHWC, videobert's layout). The sides alternate for --rounds rounds (other work on a shared
machine then hits both alike); each side's time is its best step over all rounds, with the
median of its per-round medians alongside. Prints one JSON line per side and the ratios
(PyTorch seconds / videobert seconds: > 1 means videobert is faster).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def torch_front_end(args, channels_last):
    """Returns a function that times `args.reps` steps of the torch front-end."""
    import torch
    import torch.nn.functional as F

    class FrontEnd(torch.nn.Module):
        def __init__(self, channels, D):
            super().__init__()
            previous = 3
            self.convs = torch.nn.ModuleList()
            for c in channels:
                self.convs.append(torch.nn.Conv2d(previous, c, 3, padding=1))
                previous = c
            self.proj = torch.nn.Linear(previous, D)
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]))

        def forward(self, frames):                          # uint8 [clips, F, S, S, 3]
            clips, nf, S = frames.shape[0], frames.shape[1], frames.shape[2]
            x = (frames.float() / 255 - self.mean) / self.std
            x = x.reshape(clips * nf, S, S, 3).permute(0, 3, 1, 2)     # an NHWC-strided NCHW view
            x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            for i, conv in enumerate(self.convs):
                x = F.relu(conv(x))
                if i < len(self.convs) - 1:
                    x = F.max_pool2d(x, 2)
            x = x.mean(dim=(2, 3)).reshape(clips, nf, -1).mean(1)
            return self.proj(x)

    torch.manual_seed(0)
    channels = [int(c) for c in args.channels.split(",")]
    net = FrontEnd(channels, args.D)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    frames = torch.randint(0, 256, (args.clips, args.F, args.S, args.S, 3), dtype=torch.uint8)
    dout = torch.randn(args.clips, args.D) * 0.01

    def step():
        net.zero_grad(set_to_none=False)
        net(frames).backward(dout)

    def run():
        step()                                           # warm-up
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return min(times), statistics.median(times)
    return run


def summary(side, rounds, clips, extra=None):
    best = min(r[0] for r in rounds)
    median = statistics.median(r[1] for r in rounds)
    return {"side": side, "seconds_best": best, "seconds_median": median, "clips_per_s_best": clips / best, **(extra or {})}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in [("clips", 32), ("F", 4), ("S", 32), ("D", 768), ("reps", 10)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--channels", default="32,64,128")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "bench"))
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        sys.exit(f"error: {args.bench}: not built; run `swift build -c release --product bench` first")

    import torch
    torch.set_num_threads(args.threads)

    sizes = ["--clips", str(args.clips), "--F", str(args.F), "--S", str(args.S), "--channels", args.channels,
             "--D", str(args.D), "--reps", str(args.reps)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads))
    sides = {"nchw": torch_front_end(args, False), "channels_last": torch_front_end(args, True)}
    rounds = {"videobert": [], "nchw": [], "channels_last": []}
    runs = []
    for _ in range(args.rounds):
        out = subprocess.run([args.bench, "conv", *sizes], check=True, capture_output=True, text=True, env=env)
        run = json.loads(out.stdout)
        runs.append(run)
        rounds["videobert"].append((run["seconds_best"], run["seconds_median"]))
        for name, timer in sides.items():
            rounds[name].append(timer())
    gflop = runs[0]["gflop_per_step"]
    best_run = min(runs, key=lambda r: r["seconds_best"])
    ours = summary("videobert", rounds["videobert"], args.clips,
                   {"forward_seconds_best": min(r["forward_seconds_best"] for r in runs),
                    "backward_seconds_best": min(r["backward_seconds_best"] for r in runs),
                    "images_per_chunk": best_run["images_per_chunk"]})
    extra = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    nchw = summary("pytorch (NCHW)", rounds["nchw"], args.clips, extra)
    last = summary("pytorch (channels_last)", rounds["channels_last"], args.clips, extra)
    for side in (ours, nchw, last):
        side["gflops_best"] = gflop / side["seconds_best"]
        print(json.dumps(side))
    print(json.dumps({"ratio_vs_nchw_best": nchw["seconds_best"] / ours["seconds_best"],
                      "ratio_vs_channels_last_best": last["seconds_best"] / ours["seconds_best"],
                      "ratio_vs_nchw_median": nchw["seconds_median"] / ours["seconds_median"],
                      "ratio_vs_channels_last_median": last["seconds_median"] / ours["seconds_median"],
                      "note": "PyTorch seconds / videobert seconds; > 1 means videobert is faster"}))


if __name__ == "__main__":
    main()
