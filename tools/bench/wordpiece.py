#!/usr/bin/env python3
"""WordPiece throughput, side by side in one run: HF tokenizers (BertWordPieceTokenizer, the Rust
library, on ONE thread) against videobert's BertTokenizer (release build, one thread), on the same
deterministic text, with a check that every id is identical. Prints both throughputs and the ratio.

    swift build -c release --product bench
    /work/main/.venv/bin/python tools/bench/wordpiece.py [--lines 200000] [--reps 2] [--cased] [--multilingual 0.1]

The text: English transcript-like lines (ASR style: lower and upper case, fillers, numbers,
contractions, punctuation, rare and invented words that split into several pieces) plus a
multilingual portion (accented Latin, Cyrillic, Greek, Arabic, Hindi, Korean, Chinese, Japanese,
emoji), 90% / 10% of the lines (--multilingual sets the fraction), generated from a fixed seed.

HF side: RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false, so encode_batch runs on one thread.
Both `encode_batch` and `encode_batch_fast` (no offsets) are timed and the faster one is taken:
one Rust call for all lines, the fastest single-threaded way the library offers (a Python loop of
`encode` is slower). Each side is timed on tokenization only (text already in memory), best of
--reps runs.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np  # noqa: E402
from tokenizers import BertWordPieceTokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

COMMON = """the a and to of i you it that is in we this so just going gonna really like
what now have be can do on with for your it's i'm don't that's we're you're they're there's let's
here little bit okay um uh yeah right well kind sort know think want see look make take put get
go come out up down over into then when if because but or all some more about very good nice
cut add mix stir heat pan oil salt pepper water minutes cup cups tablespoon teaspoon garlic onion
chicken sauce butter flour sugar egg eggs dough oven bake degrees until golden brown side top
first second next finally step video today show how make sure keep turn around back piece pieces
thing things way time guys everybody welcome channel subscribe comment below link description
wood drill screw board measure inch inches glue sand paper paint brush wall floor tile tool
bike tire wheel chain brake lever bolt wrench remove install replace clean check tighten loose
hair curl brush style makeup face skin cream apply blend eye lip color shade look natural""".split()
SYLLABLES = "ka ro mi zen tor qua lex vin dra pho sty gle bru nix ost ple tran cyl omb ert yst".split()
FILLERS = ["[Music]", "[Applause]", "[Laughter]", "um,", "uh...", "you know,", "--", "(inaudible)"]
MULTILINGUAL = [
    "Ajoutez une pincée de sel et mélangez délicatement pendant deux minutes.",
    "Añade el ajo picado y sofríe hasta que esté dorado, ¡no lo quemes!",
    "Jetzt schneiden wir die Zwiebeln in feine Würfel und braten sie an.",
    "Bây giờ chúng ta sẽ cho thêm nước mắm và đường vào nồi.",
    "Теперь добавим муку и хорошо перемешаем до однородности.",
    "Τώρα προσθέτουμε το ελαιόλαδο και ανακατεύουμε καλά.",
    "الآن نضيف الملح ونقلب جيدا لمدة دقيقتين",
    "अब हम प्याज़ को सुनहरा होने तक भूनेंगे।",
    "이제 양파를 넣고 노릇노릇해질 때까지 볶아 주세요.",
    "现在我们把鸡肉切成小块，然后放进锅里炒一炒。",
    "次に、玉ねぎをみじん切りにしてフライパンで炒めます。",
    "Çok güzel oldu, şimdi fırına koyuyoruz İstanbul usulü.",
    "Zażółć gęślą jaźń — łódź płynie po Wiśle.",
    "so good 😋🔥👍 let's go!! ❤️❤️",
]


def make_text(n_lines, seed=7, multilingual=0.10):
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        if rng.random() < multilingual:
            k = rng.randint(1, 3)
            lines.append(" ".join(rng.choice(MULTILINGUAL) for _ in range(k)))
            continue
        words = []
        for _ in range(rng.randint(6, 30)):
            r = rng.random()
            if r < 0.80:
                w = rng.choice(COMMON)
            elif r < 0.88:
                w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 5)))
            elif r < 0.93:
                w = str(rng.randint(0, 2000)) + rng.choice(["", "", "%", "mm", "°F", ".5"])
            elif r < 0.97:
                w = rng.choice(FILLERS)
            else:
                w = rng.choice(COMMON).capitalize()
            if rng.random() < 0.08:
                w += rng.choice([",", ".", "?", "!", "'s", ":"])
            words.append(w)
        line = " ".join(words)
        if rng.random() < 0.3:
            line = line[0].upper() + line[1:]
        lines.append(line)
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--cased", action="store_true")
    ap.add_argument("--multilingual", type=float, default=0.10, help="fraction of multilingual lines")
    ap.add_argument("--vocab", default=os.path.join(ROOT, "Vocab", "bert-base-uncased.txt"))
    ap.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "bench"))
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        sys.exit(f"{args.bench} missing: swift build -c release --product bench")

    lines = make_text(args.lines, multilingual=args.multilingual)
    work = tempfile.mkdtemp(prefix="wordpiece-bench-")
    text_path = os.path.join(work, "text.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    size = os.path.getsize(text_path)
    print(f"text: {len(lines)} lines, {size / 1e6:.1f} MB ({text_path})", flush=True)

    # HF tokenizers, one thread.
    hf = BertWordPieceTokenizer(args.vocab, lowercase=not args.cased)
    inner = hf._tokenizer
    timings = {}
    encodings = None
    for name, fn in (("encode_batch", inner.encode_batch), ("encode_batch_fast", inner.encode_batch_fast)):
        best = float("inf")
        for _ in range(args.reps):
            t0 = time.perf_counter()
            enc = fn(lines, add_special_tokens=False)
            best = min(best, time.perf_counter() - t0)
        timings[name] = best
        encodings = enc
    hf_method = min(timings, key=timings.get)
    hf_seconds = timings[hf_method]
    hf_ids = [e.ids for e in encodings]
    print(f"hf tokenizers ({hf_method}, 1 thread): {hf_seconds:.3f} s, {size / hf_seconds / 1e6:.2f} MB/s "
          f"(encode_batch {timings['encode_batch']:.3f} s, encode_batch_fast {timings['encode_batch_fast']:.3f} s)",
          flush=True)

    # Swift, one thread.
    ids_path, offsets_path = os.path.join(work, "ids.npy"), os.path.join(work, "offsets.npy")
    cmd = [args.bench, "wordpiece", "--vocab", args.vocab, "--input", text_path, "--reps", str(args.reps),
           "--ids", ids_path, "--offsets", offsets_path] + (["--cased"] if args.cased else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    swift = json.loads(out.strip().splitlines()[-1])
    print(f"videobert BertTokenizer (1 thread): {swift['seconds']:.3f} s, {swift['mb_per_s']:.2f} MB/s "
          f"(vocabulary load {swift['load_seconds'] * 1000:.0f} ms, not included)", flush=True)

    ids = np.load(ids_path)
    offsets = np.load(offsets_path)
    assert len(offsets) == len(lines) + 1, (len(offsets), len(lines))
    flat = np.fromiter((i for row in hf_ids for i in row), dtype=np.int32)
    hf_offsets = np.zeros(len(hf_ids) + 1, dtype=np.int64)
    hf_offsets[1:] = np.cumsum([len(r) for r in hf_ids])
    identical = np.array_equal(offsets, hf_offsets) and np.array_equal(ids, flat)
    if not identical:
        for k, row in enumerate(hf_ids):
            mine = ids[offsets[k]:offsets[k + 1]].tolist()
            if mine != row:
                print(f"MISMATCH at line {k}: {lines[k]!r}\n  hf:    {row}\n  swift: {mine}")
                break
        sys.exit(1)
    ratio = hf_seconds / swift["seconds"]
    print(f"ids identical: {len(flat)} ids over {len(lines)} lines")
    print(json.dumps({"benchmark": "wordpiece", "lines": len(lines), "bytes": size, "ids": int(len(flat)),
                      "cased": args.cased, "hf_method": hf_method, "hf_seconds": round(hf_seconds, 4),
                      "swift_seconds": round(swift["seconds"], 4), "hf_mb_per_s": round(size / hf_seconds / 1e6, 2),
                      "swift_mb_per_s": round(swift["mb_per_s"], 2), "ratio": round(ratio, 2), "identical": True}))


if __name__ == "__main__":
    main()
