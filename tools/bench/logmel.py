#!/usr/bin/env python3
"""Audio decode + log-mel spectrogram, side by side in one run (issue 17, goal >= 1.0x):

  videobert   `bench logmel` (release build): AudioReader (libavcodec + libswresample to mono
              float32) + LogMelSpectrogram (DFT matrix and mel filter bank through sgemm)
  peer        the ffmpeg CLI decoding to mono float32 (`ffmpeg -i F -vn -ac 1 -ar SR -f f32le -`,
              read from a pipe into numpy) + librosa.feature.melspectrogram + the log

Same file, same settings (VGGish defaults unless --set), single process each; rounds alternate
the two sides and the best wall time of each is kept. Ratio = peer seconds / our seconds (>1: we
are faster). Also checks that both give the same spectrogram: the largest absolute difference
on the log scale (librosa on the CLI's samples vs ours on ours).

    .venv-audio/bin/python tools/bench/logmel.py [--file F] [--rounds 5] [--set n_mels=80,mel_scale=slaney] [--fft 0]

Without --file: a 60 s MP4 (320x240 H.264 test pattern, stereo AAC 44.1 kHz: two tones and
noise) is encoded once with the ffmpeg CLI to /tmp/videobert-bench-audio.mp4.
Run from the repository root after `swift build -c release --product bench`.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import librosa
import numpy as np

DEFAULTS = dict(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=64,
                f_min=125.0, f_max=7500.0, mel_scale="htk", norm=None, power=1.0, center=False,
                pad_mode="constant", log="log", log_offset=0.01)


def parse_settings(text):
    s = dict(DEFAULTS)
    for item in filter(None, text.split(",")):
        k, v = item.split("=", 1)
        if k not in s:
            sys.exit(f"logmel.py: unknown setting {k}")
        if k in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            s[k] = int(v)
        elif k in ("f_min", "f_max", "power", "log_offset"):
            s[k] = float(v)
        elif k == "center":
            s[k] = v == "true"
        elif k == "norm":
            s[k] = None if v in ("null", "none") else v
        else:
            s[k] = v
    return s


def peer(path, s):
    t0 = time.perf_counter()
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-vn", "-ac", "1",
                          "-ar", str(s["sample_rate"]), "-f", "f32le", "-"],
                         check=True, stdout=subprocess.PIPE).stdout
    y = np.frombuffer(raw, dtype=np.float32)
    t1 = time.perf_counter()
    mel = librosa.feature.melspectrogram(
        y=y, sr=s["sample_rate"], n_fft=s["n_fft"], hop_length=s["hop_length"],
        win_length=s["win_length"], window="hann", center=s["center"], pad_mode=s["pad_mode"],
        power=s["power"], n_mels=s["n_mels"], fmin=s["f_min"], fmax=s["f_max"],
        htk=s["mel_scale"] == "htk", norm=s["norm"])
    off = np.float32(s["log_offset"])
    if s["log"] == "log":
        out = np.log(mel + off)
    elif s["log"] == "log10":
        out = np.log10(mel + off)
    else:
        out = (20.0 / s["power"]) * np.log10(np.maximum(mel, off))
    t2 = time.perf_counter()
    return out.T, t2 - t0, t1 - t0, t2 - t1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", default="/tmp/videobert-bench-audio.mp4")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--set", default="")
    ap.add_argument("--fft", default="1", help="0: videobert uses the DFT-matrix STFT (sgemm) instead of its FFT")
    a = ap.parse_args()
    s = parse_settings(a.set)
    if not os.path.exists(a.file):
        print(f"logmel.py: encoding {a.file} (60 s, stereo AAC 44.1 kHz)", file=sys.stderr)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
                        "-f", "lavfi", "-i",
                        "aevalsrc=0.3*sin(440*2*PI*t)+0.05*(random(0)-0.5)|0.2*sin(1250*2*PI*t)+0.05*(random(1)-0.5):s=44100",
                        "-t", "60", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                        "-c:a", "aac", "-b:a", "128k", "-y", a.file], check=True)
    bench = ".build/release/bench"
    out_npy = "/tmp/videobert-bench-logmel.npy"
    best_peer = best_ours = float("inf")
    best_peer_stages = best_ours_stages = None
    ours_line = None
    for r in range(a.rounds):
        ref, total, dec, mel_t = peer(a.file, s)
        if total < best_peer:
            best_peer, best_peer_stages = total, (dec, mel_t)
        line = subprocess.run([bench, "logmel", "--file", a.file, "--reps", "1", "--out", out_npy,
                               "--set", a.set, "--fft", a.fft], check=True, stdout=subprocess.PIPE, text=True).stdout
        ours_line = json.loads(line)
        if ours_line["seconds"] < best_ours:
            best_ours = ours_line["seconds"]
            best_ours_stages = (ours_line["decode_seconds"], ours_line["logmel_seconds"])
        print(f"round {r + 1}: peer {best_peer:.3f}s best so far, videobert {best_ours:.3f}s best so far", file=sys.stderr)
    ours = np.load(out_npy)
    if ours.shape != ref.shape:
        sys.exit(f"logmel.py: shapes differ: videobert {ours.shape}, librosa {ref.shape}")
    diff = float(np.abs(ours - ref).max())
    print(f"file {a.file}  {ours_line['samples']} samples at {s['sample_rate']} Hz  -> {ours.shape[0]} x {ours.shape[1]}  "
          f"best of {a.rounds} rounds  (librosa {librosa.__version__}, numpy {np.__version__})")
    print(f"settings {json.dumps(s)}  videobert STFT: {ours_line['stft']}")
    print(f"{'':28s} {'total s':>8s} {'decode s':>9s} {'log-mel s':>10s}")
    print(f"{'ffmpeg CLI + librosa':28s} {best_peer:8.3f} {best_peer_stages[0]:9.3f} {best_peer_stages[1]:10.3f}")
    print(f"{'videobert':28s} {best_ours:8.3f} {best_ours_stages[0]:9.3f} {best_ours_stages[1]:10.3f}")
    print(f"ratio (peer / videobert): total {best_peer / best_ours:.2f}x, decode {best_peer_stages[0] / best_ours_stages[0]:.2f}x, "
          f"log-mel {best_peer_stages[1] / best_ours_stages[1]:.2f}x")
    print(f"largest |difference| of the log-mel: {diff:.2e}")
    if diff >= 1e-3:
        sys.exit("logmel.py: the spectrograms differ by 1e-3 or more")


if __name__ == "__main__":
    main()
