"""Independent observer for the Chroma tests, using Chroma's own Python client.

  chroma_tool.py seed PORT   create collections with embeddings, metadatas and documents
  chroma_tool.py seed-exact PORT   the same without the cosine collection (whose vectors Chroma
                             returns up to 1 ULP off), for suites that compare bit for bit
  chroma_tool.py dump PORT   print every collection canonically: metadata, space, and each
                             record's id, embedding bytes (float32, hex), metadata, document
"""
import json
import sys

import chromadb
import numpy as np

cmd, port = sys.argv[1], int(sys.argv[2])
client = chromadb.HttpClient(host="127.0.0.1", port=port)

if cmd in ("seed", "seed-exact"):
    rng = np.random.default_rng(7)
    specs = [("docs", 1234, 64, "l2"), ("images", 300, 8, "cosine"), ("empty-one", 0, 4, "ip")]
    if cmd == "seed-exact":
        specs = [s for s in specs if s[3] != "cosine"]
    for name, n, dim, space in specs:
        col = client.create_collection(
            name, metadata={"team": "search", "dim": dim}, configuration={"hnsw": {"space": space}}
        )
        emb = rng.standard_normal((n, dim)).astype(np.float32)
        if n:
            # Values whose decimal form is easy to get wrong: subnormal, smallest normal, an
            # inexact decimal, negative zero.
            emb[0, :4] = np.array([1e-45, 1.17549435e-38, 0.1, -0.0], dtype=np.float32)
        for start in range(0, n, 500):
            ids = [f"{name}-{i}" for i in range(start, min(n, start + 500))]
            metas = [
                None if i % 7 == 0 else {"i": i, "score": i / 3, "tag": "ü-" + str(i % 5), "even": i % 2 == 0}
                for i in range(start, start + len(ids))
            ]
            docs = [None if i % 11 == 0 else f"document {i} — ünïcödé" for i in range(start, start + len(ids))]
            col.add(ids=ids, embeddings=emb[start : start + len(ids)], metadatas=metas, documents=docs)
elif cmd == "dump":
    out = {}
    for c in client.list_collections():
        col = client.get_collection(c.name)
        got = col.get(include=["embeddings", "metadatas", "documents"])
        rows = []
        for i, rid in enumerate(got["ids"]):
            e = np.asarray(got["embeddings"][i], dtype=np.float32)
            rows.append([rid, e.astype("<f4").tobytes().hex(), got["metadatas"][i], got["documents"][i]])
        rows.sort()
        space = (col.configuration_json or {}).get("hnsw", {}).get("space")
        out[c.name] = {"metadata": col.metadata, "space": space, "records": rows}
    print(json.dumps(out, sort_keys=True, ensure_ascii=False))
else:
    sys.exit(f"unknown command {cmd}")
