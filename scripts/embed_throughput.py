#!/usr/bin/env python3
"""Sentences per second of all-MiniLM-L6-v2: feedloop's embedder (candle) beside
sentence-transformers (PyTorch), same sentences, same thread count, same batch sizes, in one run.

Both sides take the first N texts of the banking77 test set in file order and embed them in
consecutive chunks of the batch size, one call at a time (as a server embeds a request's texts).
The two implementations alternate per round so drift in machine load hits both alike; the best
round of each is reported, as is the median. On a busy machine wall-clock rates say little, so
sentences per CPU-second of each process (all its threads) are reported beside them.

Usage (in a virtualenv with sentence-transformers; build the example first with
`cargo build --release -p feedloop-embed --example embed_throughput`):

    python scripts/embed_throughput.py [--threads 1] [--batches 1,8,32] [--sentences 512] \
        [--rounds 3] [--model-dir DIR] [--data ../shared/data/banking77/test.csv]
"""

import argparse
import csv
import json
import os
import pathlib
import platform
import statistics
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def read_texts(path: str, limit: int) -> list[str]:
    with open(path, newline="", encoding="utf-8") as file:
        return [row["text"] for _, row in zip(range(limit), csv.DictReader(file))]


def run_candle(args, batch: int) -> tuple[float, float]:
    binary = ROOT / "target/release/examples/embed_throughput"
    output = subprocess.run(
        [
            str(binary),
            "--data", args.data,
            "--sentences", str(args.sentences),
            "--threads", str(args.threads),
            "--batches", str(batch),
            "--model-dir", args.model_dir,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return result["per_sec"], result["per_cpu_sec"]


def run_torch(model, texts: list[str], batch: int) -> tuple[float, float]:
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), batch):
        model.encode(texts[start : start + batch], batch_size=batch, normalize_embeddings=True)
    return (
        len(texts) / (time.perf_counter() - started),
        len(texts) / (time.process_time() - cpu_started),
    )


def main() -> None:
    default_dir = os.environ.get("FEEDLOOP_MODEL_DIR") or str(
        pathlib.Path.home() / ".cache/feedloop/models/all-MiniLM-L6-v2"
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model-dir", default=default_dir)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/banking77/test.csv"))
    args = parser.parse_args()

    # Thread settings before torch starts its pools.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = SentenceTransformer(args.model_dir, device="cpu")
    model.eval()
    texts = read_texts(args.data, args.sentences)
    with torch.inference_mode():
        run_torch(model, texts[:64], 32)  # warm up

        print(
            f"# {len(texts)} banking77 sentences, {args.threads} thread(s), "
            f"torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}, "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
            f"load {os.getloadavg()[0]:.2f}"
        )
        print(
            "| batch | feedloop (candle) sent/s | sentence-transformers sent/s | ratio "
            "| feedloop sent/CPU-s | sentence-transformers sent/CPU-s | ratio |"
        )
        print("|---|---|---|---|---|---|---|")
        for batch in [int(b) for b in args.batches.split(",")]:
            candle_runs, torch_runs = [], []
            for _ in range(args.rounds):
                candle_runs.append(run_candle(args, batch))
                torch_runs.append(run_torch(model, texts, batch))
            wall_candle = [run[0] for run in candle_runs]
            wall_torch = [run[0] for run in torch_runs]
            cpu_candle = max(run[1] for run in candle_runs)
            cpu_torch = max(run[1] for run in torch_runs)
            print(
                f"| {batch} | {max(wall_candle):.1f} (median {statistics.median(wall_candle):.1f}) "
                f"| {max(wall_torch):.1f} (median {statistics.median(wall_torch):.1f}) "
                f"| {max(wall_candle) / max(wall_torch):.2f}× "
                f"| {cpu_candle:.1f} | {cpu_torch:.1f} | {cpu_candle / cpu_torch:.2f}× |",
                flush=True,
            )


if __name__ == "__main__":
    main()
