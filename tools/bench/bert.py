#!/usr/bin/env python3
"""BertForPreTraining training throughput: videobert vs PyTorch/transformers, side by side.

Usage (from the repository root, after `swift build -c release --product bench`):
    /work/main/.venv/bin/python tools/bench/bert.py [--configs small,base] [--steps 3] [--rounds 2] [--threads 2]

One training step on each side = zero gradients, forward + backward of MLM + MFM + alignment
(dropout 0.1), clip_grad_norm_(1.0), AdamW (weight decay 0.01 except biases and LayerNorm
weights). fp32, `--threads` threads (OpenBLAS for videobert, torch.set_num_threads for PyTorch).
Configurations (same as `bench bert`): small = 4 layers x 256 hidden, 4 heads, FF 1024,
batch 32; base = BERT-base 12 x 768, 12 heads, FF 3072, batch 8; both T = 128 and the joint
vocabulary 30,522 WordPieces + 144 visual words. The batch: no padding, [CLS] text [>] video
[SEP] halves, masked positions where (b*T + t) % 7 == 3 inside either part, every example with
an alignment label (tools/bench/Sources/BertBench.swift builds the same one).

PyTorch sides, both transformers.BertForPreTraining with the same configuration:
  pytorch-masked  the same computation as videobert (what "logits only at masked positions"
                  means): model.bert, then the MLM transform and the tied decoder only at the
                  masked rows -- text rows against the text-vocabulary slice of the decoder,
                  video rows against the visual-word slice -- and the next-sentence head. This
                  is the like-for-like comparison and the ratio the target applies to.
  pytorch-hf      the stock call a transformers user writes: model(..., labels=..., with -100 at
                  unmasked positions, next_sentence_label=...): logits over the whole vocabulary
                  at EVERY position.
Each side runs in its own process (clean peak RSS), sides alternate for --rounds rounds so load
from other work on a shared machine hits all alike, and each side's time is its best step over
all rounds (median alongside). Prints one JSON line per side and configuration, then the ratios
(PyTorch seconds / videobert seconds: > 1 means videobert is faster) and memory ratios.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIGS = {"small": dict(L=4, C=256, NH=4, FF=1024, B=32), "base": dict(L=12, C=768, NH=12, FF=3072, B=8)}
TEXT, VISUAL, T = 30522, 144, 128


def batch(B):
    """The benchmark batch of BertBench.swift (ids differ, the layout and masked positions are the same)."""
    import torch
    g = torch.Generator().manual_seed(3)
    ids = torch.zeros(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    text_rows, text_targets, video_rows, video_targets = [], [], [], []
    half = T // 2
    for b in range(B):
        for t in range(T):
            i = b * T + t
            masked = i % 7 == 3
            if t == 0:
                ids[b, t] = 101
            elif t < half:
                tok = int(torch.randint(1000, TEXT, (1,), generator=g))
                ids[b, t] = 103 if masked else tok
                if masked:
                    text_rows.append(i); text_targets.append(tok); labels[b, t] = tok
            elif t == half:
                ids[b, t] = 1
            elif t < T - 1:
                v = int(torch.randint(0, VISUAL, (1,), generator=g))
                ids[b, t] = 103 if masked else TEXT + v
                types[b, t] = 1
                if masked:
                    video_rows.append(i); video_targets.append(v); labels[b, t] = TEXT + v
            else:
                ids[b, t] = 102
                types[b, t] = 1
    align = torch.tensor([b % 2 for b in range(B)])           # 1 aligned
    return dict(ids=ids, types=types, mask=torch.ones(B, T), labels=labels, nsp=1 - align,
                text_rows=torch.tensor(text_rows), text_targets=torch.tensor(text_targets),
                video_rows=torch.tensor(video_rows), video_targets=torch.tensor(video_targets))


def torch_side(name, variant, steps, threads):
    import torch
    import torch.nn.functional as F
    from transformers import BertConfig, BertForPreTraining
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c = CONFIGS[name]
    config = BertConfig(vocab_size=TEXT + VISUAL, hidden_size=c["C"], num_hidden_layers=c["L"], num_attention_heads=c["NH"],
                        intermediate_size=c["FF"], max_position_embeddings=512)
    model = BertForPreTraining(config).train()
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or n.endswith("LayerNorm.weight"))]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or n.endswith("LayerNorm.weight")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
    x = batch(c["B"])
    C = c["C"]
    word = model.bert.embeddings.word_embeddings.weight
    bias = model.cls.predictions.bias

    def loss_masked():
        out = model.bert(input_ids=x["ids"], attention_mask=x["mask"], token_type_ids=x["types"])
        hidden = out.last_hidden_state.reshape(-1, C)
        rows = torch.cat([x["text_rows"], x["video_rows"]])
        h = model.cls.predictions.transform(hidden[rows])
        mt = len(x["text_rows"])
        text_logits = F.linear(h[:mt], word[:TEXT], bias[:TEXT])
        video_logits = F.linear(h[mt:], word[TEXT:], bias[TEXT:])
        nsp = model.cls.seq_relationship(out.pooler_output)
        return (F.cross_entropy(text_logits, x["text_targets"]) + F.cross_entropy(video_logits, x["video_targets"])
                + F.cross_entropy(nsp, x["nsp"]))

    def loss_hf():
        return model(input_ids=x["ids"], attention_mask=x["mask"], token_type_ids=x["types"], labels=x["labels"],
                     next_sentence_label=x["nsp"]).loss

    loss_fn = loss_masked if variant == "masked" else loss_hf

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(loss)

    step()                                              # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(side=f"pytorch-{variant}", config=name, seconds_best=min(times), seconds_median=statistics.median(times),
                          peak_rss_mb=rss, torch=torch.__version__, threads=torch.get_num_threads(),
                          attention=model.config._attn_implementation)))


def run_json(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="small,base")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "bench"))
    ap.add_argument("--torch-side", nargs=2, metavar=("CONFIG", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_side:
        torch_side(args.torch_side[0], args.torch_side[1], args.steps, args.threads)
        return
    if not os.path.exists(args.bench):
        sys.exit(f"error: {args.bench}: not built; run `swift build -c release --product bench` first")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    for name in args.configs.split(","):
        runs = {"videobert": [], "pytorch-masked": [], "pytorch-hf": []}
        for r in range(args.rounds):
            runs["videobert"].append(run_json([args.bench, "bert", "--config", name, "--steps", str(args.steps),
                                               "--peak", "1" if r == 0 else "0"], env))
            for variant in ("masked", "hf"):
                runs[f"pytorch-{variant}"].append(run_json([sys.executable, __file__, "--torch-side", name, variant,
                                                            "--steps", str(args.steps), "--threads", str(args.threads)], env))
        tokens = CONFIGS[name]["B"] * T
        summary = {}
        for side, rs in runs.items():
            best = min(r["seconds_best"] for r in rs)
            summary[side] = dict(side=side, config=name, seconds_best=best,
                                 seconds_median=statistics.median(r["seconds_median"] for r in rs),
                                 tokens_per_s=tokens / best, peak_rss_mb=max(r["peak_rss_mb"] for r in rs))
        ours = min(runs["videobert"], key=lambda r: r["seconds_best"])
        peak = runs["videobert"][0]["sgemm_peak_gflops"]
        summary["videobert"].update(gflops=ours["gflop_per_step"] / summary["videobert"]["seconds_best"], sgemm_peak_gflops=peak,
                                    fraction_of_peak=ours["gflop_per_step"] / summary["videobert"]["seconds_best"] / peak,
                                    masked_text=ours["masked_text"], masked_video=ours["masked_video"])
        for s in summary.values():
            print(json.dumps(s))
        print(f"videobert {name} breakdown (fastest run, ms per step): " +
              ", ".join(f"{b['stage']} {b['ms']}" for b in ours["breakdown"]))
        v = summary["videobert"]
        print(json.dumps(dict(config=name,
                              speed_vs_pytorch_masked=summary["pytorch-masked"]["seconds_best"] / v["seconds_best"],
                              speed_vs_pytorch_hf=summary["pytorch-hf"]["seconds_best"] / v["seconds_best"],
                              memory_vs_pytorch_masked=v["peak_rss_mb"] / summary["pytorch-masked"]["peak_rss_mb"],
                              memory_vs_pytorch_hf=v["peak_rss_mb"] / summary["pytorch-hf"]["peak_rss_mb"],
                              note="speed: PyTorch seconds / videobert seconds (> 1: videobert faster); "
                                   "memory: videobert peak RSS / PyTorch peak RSS (< 1: videobert smaller)")))


if __name__ == "__main__":
    main()
