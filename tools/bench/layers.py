#!/usr/bin/env python3
"""One BERT encoder layer, forward + backward: videobert's Model layers vs PyTorch, side by side.

Usage (from the repository root, after `swift build -c release --product bench`):
    /work/main/.venv/bin/python tools/bench/layers.py [--B 8 --T 128 --C 768 --NH 12 --FF 3072 --dropout 0.1 --reps 5]

PyTorch side: transformers' BertLayer (what a user would otherwise train), fp32, 2 threads,
training mode (dropout on), with a [B, 1, 1, T] additive attention mask as BertModel passes it,
both with the default attention implementation (sdpa) and with eager. Each step is
forward + backward of a given output gradient, including the input gradient, as in a stack.
The Swift side is `bench layers` with the same sizes, in the same run. The sides alternate for
--rounds rounds (other work on a shared machine then hits both alike); each side's time is its
best step over all rounds, with the median of its per-round medians alongside. Prints one JSON
line per side and the ratios (PyTorch seconds / videobert seconds: > 1 means videobert is faster).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def torch_layer(args, attn):
    """Returns a function that times `args.reps` steps of BertLayer with this attention implementation."""
    import torch
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    torch.manual_seed(0)
    config = BertConfig(hidden_size=args.C, num_attention_heads=args.NH, intermediate_size=args.FF,
                        hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)
    config._attn_implementation = attn
    layer = BertLayer(config).train()
    x = torch.randn(args.B, args.T, args.C, requires_grad=True)
    mask = torch.zeros(args.B, 1, 1, args.T)             # (1 - attention_mask) * min, all tokens real
    dout = torch.randn(args.B, args.T, args.C) * 0.01

    def step():
        layer.zero_grad(set_to_none=False)
        x.grad = None
        out = layer(x, attention_mask=mask)
        out.backward(dout)

    def run():
        step()                                           # warm-up
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return min(times), statistics.median(times)
    return run


def summary(side, rounds, tokens, extra=None):
    best = min(r[0] for r in rounds)
    median = statistics.median(r[1] for r in rounds)
    return {"side": side, "seconds_best": best, "seconds_median": median, "tokens_per_s_best": tokens / best, **(extra or {})}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in [("B", 8), ("T", 128), ("C", 768), ("NH", 12), ("FF", 3072), ("reps", 5)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "bench"))
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        sys.exit(f"error: {args.bench}: not built; run `swift build -c release --product bench` first")

    import torch
    torch.set_num_threads(args.threads)

    sizes = ["--B", str(args.B), "--T", str(args.T), "--C", str(args.C), "--NH", str(args.NH), "--FF", str(args.FF),
             "--dropout", str(args.dropout), "--reps", str(args.reps)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads))
    sides = {"sdpa": torch_layer(args, "sdpa"), "eager": torch_layer(args, "eager")}
    rounds = {"videobert": [], "sdpa": [], "eager": []}
    runs = []
    for r in range(args.rounds):
        out = subprocess.run([args.bench, "layers", *sizes, "--peak", "1"], check=True, capture_output=True, text=True, env=env)
        run = json.loads(out.stdout)
        runs.append(run)
        rounds["videobert"].append((run["seconds_best"], run["seconds_median"]))
        for name, timer in sides.items():
            rounds[name].append(timer())
    tokens = args.B * args.T
    best_run = min(runs, key=lambda r: r["seconds_best"])
    gflop = best_run["gflop_per_step"]
    peak = max(r["sgemm_peak_gflops"] for r in runs)         # the sgemm peak, best of the rounds
    ours = summary("videobert", rounds["videobert"], tokens,
                   {"gflops_best": gflop / min(r[0] for r in rounds["videobert"]), "sgemm_peak_gflops": peak})
    ours["fraction_of_peak"] = ours["gflops_best"] / peak if peak else None
    sdpa = summary("pytorch BertLayer (sdpa)", rounds["sdpa"], tokens, {"torch": torch.__version__, "threads": torch.get_num_threads()})
    eager = summary("pytorch BertLayer (eager)", rounds["eager"], tokens, {"torch": torch.__version__, "threads": torch.get_num_threads()})
    for side in (ours, sdpa, eager):
        side["gflops_best"] = gflop / side["seconds_best"]
        print(json.dumps(side))
    print("videobert breakdown (fastest run; per op its fastest step, ms): " +
          ", ".join(f"{b['op']} {b['ms_per_step']}" for b in best_run["breakdown"]))
    print(json.dumps({"ratio_vs_sdpa_best": sdpa["seconds_best"] / ours["seconds_best"],
                      "ratio_vs_eager_best": eager["seconds_best"] / ours["seconds_best"],
                      "ratio_vs_sdpa_median": sdpa["seconds_median"] / ours["seconds_median"],
                      "ratio_vs_eager_median": eager["seconds_median"] / ours["seconds_median"],
                      "note": "PyTorch seconds / videobert seconds; > 1 means videobert is faster"}))


if __name__ == "__main__":
    main()
