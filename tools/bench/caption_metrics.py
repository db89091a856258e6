#!/usr/bin/env python3
"""Caption metrics, side by side in one run: pycocoevalcap (PTBTokenizer + Bleu, Meteor, Rouge,
Cider, as COCOEvalCap runs them; Java for the tokenizer and METEOR) against
`videobert evaluate captions` (release build), on the same files: the caption-metric fixture
(Tests/TasksTests/Resources) repeated --copies times under new image ids. Prints both wall-clock
times, the ratio, and both sets of scores (BLEU, ROUGE-L and CIDEr must agree; METEOR differs by
the modules we do not implement).

    swift build -c release --product videobert
    /work/main/.venv/bin/python tools/bench/caption_metrics.py [--copies 20]

Each side is timed end to end from the JSON files, as a user would run it (pycocoevalcap inside
this Python process after imports; videobert as a process), one run each.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RES = os.path.join(ROOT, "Tests", "TasksTests", "Resources")
BIN = os.path.join(ROOT, ".build", "release", "videobert")


def pycocoevalcap_scores(pred_path, refs_path):
    refs = json.load(open(refs_path))["annotations"]
    preds = json.load(open(pred_path))
    gts, res = {}, {}
    for a in refs:
        gts.setdefault(a["image_id"], []).append({"caption": a["caption"]})
    by_id = {p["image_id"]: [{"caption": p["caption"]}] for p in preds}
    res = {k: by_id[k] for k in gts if k in by_id}
    gts = {k: gts[k] for k in res}
    tok = PTBTokenizer()
    gts, res = tok.tokenize(gts), tok.tokenize(res)
    out = {}
    for scorer, names in [(Bleu(4), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]), (Meteor(), ["METEOR"]),
                          (Rouge(), ["ROUGE_L"]), (Cider(), ["CIDEr"])]:
        score, _ = scorer.compute_score(gts, res, verbose=0) if isinstance(scorer, Bleu) else scorer.compute_score(gts, res)
        for n, s in zip(names, score if isinstance(score, list) else [score]):
            out[n] = float(s)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=20)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: swift build -c release --product videobert")
    refs = json.load(open(os.path.join(RES, "caption_references.json")))["annotations"]
    preds = json.load(open(os.path.join(RES, "caption_results.json")))
    big_refs = [{"image_id": f"{k}_{a['image_id']}", "caption": a["caption"]} for k in range(args.copies) for a in refs]
    big_preds = [{"image_id": f"{k}_{p['image_id']}", "caption": p["caption"]} for k in range(args.copies) for p in preds]
    with tempfile.TemporaryDirectory() as tmp:
        refs_path, pred_path = os.path.join(tmp, "refs.json"), os.path.join(tmp, "pred.json")
        json.dump({"annotations": big_refs}, open(refs_path, "w"))
        json.dump(big_preds, open(pred_path, "w"))
        print(f"{len(big_preds)} images, {len(big_refs)} references")

        t = time.perf_counter()
        py = pycocoevalcap_scores(pred_path, refs_path)
        t_py = time.perf_counter() - t

        t = time.perf_counter()
        out = subprocess.run([BIN, "evaluate", "captions", "--pred", pred_path, "--refs", refs_path, "--json"],
                             check=True, capture_output=True, text=True).stdout
        t_vb = time.perf_counter() - t
        vb = json.loads(out)

    print(f"pycocoevalcap          {t_py:7.2f} s")
    print(f"videobert (release)    {t_vb:7.2f} s")
    print(f"ratio                  {t_py / t_vb:7.1f}x faster")
    for k in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"]:
        print(f"  {k:8s} pycocoevalcap {py[k]:.6f}  videobert {vb[k]:.6f}  diff {vb[k] - py[k]:+.2e}")


if __name__ == "__main__":
    main()
