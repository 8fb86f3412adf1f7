"""Benchmark helper for bench/milvus.sh, through pymilvus.

  milvus_tool.py URI seed NAME ROWS DIM     a collection of ROWS float vectors (dim DIM), an int64
                                            key and a short text, indexed (IVF_FLAT) and loaded
  milvus_tool.py URI export NAME FILE       what a user scripts today: query_iterator over every
                                            row, keys and vectors written to FILE as raw bytes
"""
import sys

import numpy as np
from pymilvus import DataType, MilvusClient


def seed(c, name, rows, dim):
    if c.has_collection(name):
        c.drop_collection(name)
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("title", DataType.VARCHAR, max_length=64)
    c.create_collection(name, schema=s)
    rng = np.random.default_rng(7)
    batch = 5000
    for k in range(0, rows, batch):
        n = min(batch, rows - k)
        vecs = rng.standard_normal((n, dim), dtype=np.float32)
        c.insert(name, [{"id": k + i, "v": vecs[i], "title": f"doc {k + i}"} for i in range(n)])
    c.flush(name)
    ip = c.prepare_index_params()
    ip.add_index("v", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 128})
    c.create_index(name, ip)
    c.load_collection(name)


def export(c, name, path):
    it = c.query_iterator(name, batch_size=1000, filter="", output_fields=["id", "v", "title"])
    n = 0
    with open(path, "wb") as f:
        while True:
            rows = it.next()
            if not rows:
                it.close()
                break
            f.write(np.asarray([r["id"] for r in rows], dtype=np.int64).tobytes())
            f.write(np.asarray([r["v"] for r in rows], dtype=np.float32).tobytes())
            f.write("\n".join(r["title"] for r in rows).encode())
            n += len(rows)
    print(n)


def main():
    uri, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    c = MilvusClient(uri=uri)
    if cmd == "seed":
        seed(c, args[0], int(args[1]), int(args[2]))
    elif cmd == "export":
        export(c, args[0], args[1])


if __name__ == "__main__":
    main()
