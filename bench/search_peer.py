"""The rank_bm25 peer for `aisle bench search`: BM25Okapi over the same documents and
searches that `aisle bench search --export DIR` writes.

    python bench/search_peer.py DIR OUT_FILE

Tokenisation: lowercase words of letters and digits (rank_bm25 takes token lists and has no
tokenizer of its own). Parameters: rank_bm25's defaults (k1 = 1.5, b = 0.75, epsilon = 0.25).
Writes `QUERY_INDEX<TAB>ITEM ...` with the top 10 per search; prints timings to stderr.
"""
import re
import sys
import time

import numpy as np
from rank_bm25 import BM25Okapi

TOKEN = re.compile(r"\w+")


def tokens(text):
    return TOKEN.findall(text.lower())


def main():
    folder, out = sys.argv[1], sys.argv[2]
    ids, docs = [], []
    with open(f"{folder}/docs.tsv", encoding="utf-8") as f:
        for line in f:
            item, text = line.rstrip("\n").split("\t", 1)
            ids.append(int(item))
            docs.append(tokens(text))
    started = time.perf_counter()
    bm25 = BM25Okapi(docs)
    built = time.perf_counter() - started
    ids = np.array(ids)
    started = time.perf_counter()
    n = 0
    with open(f"{folder}/queries.tsv", encoding="utf-8") as f, open(out, "w") as w:
        for line in f:
            q, text = line.rstrip("\n").split("\t", 1)
            scores = bm25.get_scores(tokens(text))
            top = np.argsort(-scores, kind="stable")[:10]
            top = [ids[i] for i in top if scores[i] > 0]
            w.write(q + "\t" + " ".join(map(str, top)) + "\n")
            n += 1
    searched = time.perf_counter() - started
    print(f"rank_bm25: index {built:.2f} s, {n} searches in {searched:.1f} s "
          f"({1000 * searched / max(n, 1):.2f} ms per search)", file=sys.stderr)


if __name__ == "__main__":
    main()
