#!/usr/bin/env python3
"""k-means benchmark, side by side in one run (issue 2, docs/ARCHITECTURE.md §8):

    100,000 × 512 float32 points into 1,024 clusters, 10 iterations, 2 threads:
    videobert (tools/bench `kmeans`, release build) vs faiss-cpu vs scikit-learn.

Same data for all three: a deterministic Gaussian mixture written once to an .npy file that every
side reads. Timed: the whole fit, seeding included (ours: greedy k-means++ on a sample; faiss:
random sampling; scikit-learn: greedy k-means++ on all points), reading the file excluded. Every
result's final centroids are scored by one evaluator (each point to its nearest centroid, squared
distances summed in float64), so the inertias compare like with like.

    swift build -c release --product bench
    /work/main/.venv/bin/python tools/bench/kmeans.py [--repeat 3] [--skip-sklearn]

Targets: videobert at least as fast as faiss (ratio faiss_seconds / ours ≥ 1.0), with inertia
≤ 1.01 × faiss's. CPU seconds (all threads) are printed too: when other jobs share the machine,
wall times stretch but CPU time / 2 stays close to the unshared wall time.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N, D, K, ITERS, THREADS = 100_000, 512, 1024, 10, 2


def make_data(path):
    """A mixture of 3,000 Gaussians with Zipf-like weights (so clusters have very unequal sizes,
    as visual features do) and per-component spreads; seeded, so every run sees the same bytes."""
    rng = np.random.default_rng(20240611)
    components = 3000
    centers = rng.standard_normal((components, D), dtype=np.float32)
    weights = 1.0 / np.arange(1, components + 1) ** 0.5
    weights /= weights.sum()
    comp = rng.choice(components, size=N, p=weights)
    spread = rng.uniform(0.6, 1.4, size=components).astype(np.float32)
    x = centers[comp] + rng.standard_normal((N, D), dtype=np.float32) * spread[comp, None]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, np.ascontiguousarray(x, dtype=np.float32))


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def evaluate(x, centroids):
    """Σ over points of the squared distance to the nearest centroid (exact search, float64 sum)."""
    import faiss
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    d, _ = index.search(x, 1)
    return float(d.astype(np.float64).sum())


def run_ours(data, out, seed):
    exe = os.path.join(ROOT, ".build", "release", "bench")
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: run `swift build -c release --product bench` first")
    cmd = [exe, "kmeans", "--data", data, "--k", str(K), "--iters", str(ITERS), "--seed", str(seed),
           "--threads", str(THREADS), "--out", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench failed: {r.stderr}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return res["seconds"], res["cpu_seconds"], np.load(out), res


def run_faiss(x, seed):
    import faiss
    faiss.omp_set_num_threads(THREADS)
    # max_points_per_centroid large enough that faiss trains on every point, like the others.
    km = faiss.Kmeans(D, K, niter=ITERS, seed=seed, max_points_per_centroid=N, verbose=False)
    c0, t0 = cpu_seconds(), time.perf_counter()
    km.train(x)
    return time.perf_counter() - t0, cpu_seconds() - c0, km.centroids.copy()


def run_sklearn(x, seed):
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=THREADS):
        km = KMeans(n_clusters=K, n_init=1, max_iter=ITERS, algorithm="lloyd", tol=0.0, random_state=seed)
        c0, t0 = cpu_seconds(), time.perf_counter()
        km.fit(x)
        return time.perf_counter() - t0, cpu_seconds() - c0, km.cluster_centers_.astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, ".cache", "bench", f"kmeans_{N}x{D}.npy"))
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest is reported")
    ap.add_argument("--skip-sklearn", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(args.data):
        print(f"writing {args.data}", file=sys.stderr)
        make_data(args.data)
    x = np.load(args.data)
    assert x.shape == (N, D) and x.dtype == np.float32
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; > 0.5 means other jobs are running)")

    results = {}
    ours_out = os.path.join(os.path.dirname(args.data), "kmeans_ours_centroids.npy")
    tools = [("videobert", lambda: run_ours(args.data, ours_out, 1)[:3]), ("faiss", lambda: run_faiss(x, 1234))]
    if not args.skip_sklearn:
        tools.append(("sklearn", lambda: run_sklearn(x, 0)))
    for name, fn in tools:
        best = None
        for _ in range(args.repeat):
            seconds, cpu, centroids = fn()
            if best is None or seconds < best[0]:
                best = (seconds, cpu, centroids)
        results[name] = {"seconds": best[0], "cpu_seconds": best[1], "inertia": evaluate(x, best[2])}
        print(f"{name:10s} {best[0]:8.2f} s  (cpu {best[1]:7.2f} s)  inertia {results[name]['inertia']:.6g}", flush=True)

    ours = results["videobert"]
    summary = {"benchmark": "kmeans", "rows": N, "dim": D, "k": K, "iterations": ITERS, "threads": THREADS,
               "load_average_after": os.getloadavg()[0], "results": results}
    for peer in [p for p in ("faiss", "sklearn") if p in results]:
        summary[f"speedup_vs_{peer}"] = results[peer]["seconds"] / ours["seconds"]
        summary[f"cpu_speedup_vs_{peer}"] = results[peer]["cpu_seconds"] / ours["cpu_seconds"]
        summary[f"inertia_ratio_vs_{peer}"] = ours["inertia"] / results[peer]["inertia"]
        print(f"vs {peer:8s} speed ×{summary[f'speedup_vs_{peer}']:.2f} (cpu ×{summary[f'cpu_speedup_vs_{peer}']:.2f}), "
              f"inertia ratio {summary[f'inertia_ratio_vs_{peer}']:.4f}")
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
