#!/usr/bin/env python3
"""Query again a Chroma collection that ../shared/bench/ann_bench.py kept (--keep), so that
Chroma's latency can be measured on a quiet machine after an insert that ran beside other work.

    python scripts/chroma_requery.py --collection-dir /tmp/chroma-data/n1000000-r1 \
        --data-dir /tmp/ann --n 1000000 [--passes 3]

Prints p50/p99 single-query latency at k = 10 and recall@10 against ann_bench's exact ground
truth, for each pass (the best pass is the figure to report).
"""
import argparse
import math
import time

import chromadb
import numpy as np
from chromadb.config import Settings


def percentile(values, p):
    """Nearest-rank percentile, as ann_bench.rs reports it."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--collection-dir", required=True, help="the kept PersistentClient folder")
    ap.add_argument("--data-dir", required=True, help="ann_bench's data folder (queries.npy, gt_N.npy)")
    ap.add_argument("--n", type=int, required=True, help="the collection's size (names it and its ground truth)")
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()

    queries = np.load(f"{args.data_dir}/queries.npy")
    truth = np.load(f"{args.data_dir}/gt_{args.n}.npy")[:, :10]
    client = chromadb.PersistentClient(path=args.collection_dir, settings=Settings(anonymized_telemetry=False))
    collection = client.get_collection(f"bench_{args.n}_1")
    collection.query(query_embeddings=[queries[0]], n_results=10)
    for number in range(args.passes):
        latencies, hits = [], 0
        for query, expected in zip(queries, truth):
            started = time.perf_counter()
            found = collection.query(query_embeddings=[query], n_results=10, include=[])["ids"][0]
            latencies.append(time.perf_counter() - started)
            hits += len({int(key) for key in found} & set(expected.tolist()))
        print(f"pass {number}: p50 {percentile(latencies, 50) * 1000:.3f} ms "
              f"p99 {percentile(latencies, 99) * 1000:.3f} ms recall@10 {hits / truth.size:.4f}", flush=True)


if __name__ == "__main__":
    main()
