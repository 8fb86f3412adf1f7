"""The tests' independent observer of a Milvus server, through pymilvus (not drctl's client).

  milvus_observe.py URI digest [COLLECTION...]   one canonical JSON line per collection:
      schema (fields, types, primary key, auto_id, dynamic field, partition key),
      description, consistency level, partitions with their rows sorted by primary key,
      float vectors as the hex of their float32 bits, binary vectors as hex, dynamic fields,
      index definitions. Collections default to every one, sorted.
  milvus_observe.py URI seed SPEC.json            create collections as SPEC describes.
  milvus_observe.py URI drop [COLLECTION...]      drop them (every one when none is named).
  milvus_observe.py URI list                       the collections, one per line, sorted.
Before the command, `--db NAME` picks the database (seed creates it when missing), and
`--token T --ca FILE` connect to a server with authentication and TLS.
"""
import json
import random
import struct
import sys

from pymilvus import DataType, MilvusClient


def canon_value(v):
    if isinstance(v, float):
        return "f32:" + struct.pack("<f", v).hex()
    if isinstance(v, (bytes, bytearray)):
        return "bin:" + bytes(v).hex()
    if isinstance(v, list) and v and all(isinstance(x, list) for x in v):
        return [canon_value(x) for x in v]
    if isinstance(v, list) and v and isinstance(v[0], (bytes, bytearray)):
        return "bin:" + b"".join(v).hex()
    if isinstance(v, list) and all(isinstance(x, float) for x in v):
        return "f32:" + struct.pack(f"<{len(v)}f", *v).hex()
    if isinstance(v, dict):
        return {k: canon_value(x) for k, x in sorted(v.items())}
    return v


def digest(c, names, with_ids):
    out = []
    for name in names or sorted(c.list_collections()):
        d = c.describe_collection(name)
        fields = [
            {
                "name": f["name"],
                "type": int(f["type"]),
                "params": {k: str(v) for k, v in sorted(f.get("params", {}).items())},
                "primary": bool(f.get("is_primary", False)),
                "auto_id": bool(f.get("auto_id", False)),
                "partition_key": bool(f.get("is_partition_key", False)),
                "description": f.get("description", ""),
            }
            for f in d["fields"]
        ]
        pk = next(f["name"] for f in fields if f["primary"])
        parts = {}
        by_key = any(f["partition_key"] for f in fields)
        # A partition-key collection cannot be queried by partition: it is read whole.
        for p in ["(by partition key)"] if by_key else sorted(c.list_partitions(name)):
            # One plain query (pymilvus's query_iterator cannot page a string key holding a
            # quote); the tests' collections stay under the server's 16,384-row cap.
            # pymilvus returns a lazy list that sorting in place scrambles: copy the rows first.
            rows = [dict(r) for r in c.query(name, filter="", output_fields=["*"], partition_names=[] if by_key else [p], limit=16384, consistency_level="Strong")]
            assert len(rows) < 16384, "the observer reads at most 16,383 rows per partition"
            rows.sort(key=lambda r: r[pk])
            if not with_ids:
                # auto_id keys are reassigned by the server on insert: compare the rest.
                rows = sorted((dict((k, v) for k, v in r.items() if k != pk) for r in rows), key=lambda r: json.dumps(canon_value(r), sort_keys=True))
            parts[p] = [canon_value(r) for r in rows]
        if by_key:
            parts["partitions"] = sorted(c.list_partitions(name))
        indexes = []
        for ix in sorted(c.list_indexes(name)):
            i = c.describe_index(name, ix)
            indexes.append({k: str(v) for k, v in sorted(i.items()) if k in ("field_name", "index_type", "metric_type", "nlist", "params", "M", "efConstruction")})
        out.append(
            {
                "collection": name,
                "description": d.get("description", ""),
                "consistency_level": d.get("consistency_level"),
                "dynamic": bool(d.get("enable_dynamic_field", False)),
                "fields": fields,
                "partitions": parts,
                "indexes": indexes,
            }
        )
    return out


TYPES = {"int64": DataType.INT64, "varchar": DataType.VARCHAR, "float_vector": DataType.FLOAT_VECTOR,
         "binary_vector": DataType.BINARY_VECTOR,
         "sparse_float_vector": DataType.SPARSE_FLOAT_VECTOR, "double": DataType.DOUBLE, "bool": DataType.BOOL,
         "json": DataType.JSON, "int32": DataType.INT32, "float": DataType.FLOAT}


def seed(c, spec):
    """spec: {"collections": [{"name", "fields": [{"name","type","dim"?,"max_length"?,"primary"?,"partition_key"?}],
    "auto_id", "dynamic", "description", "partitions": [...], "rows": N, "seed", "index": {field, index_type, metric_type, params},
    "num_partitions", "consistency", "batch", "flush_each", "release"}]}"""
    for coll in spec["collections"]:
        rnd = random.Random(coll.get("seed", 1))
        s = MilvusClient.create_schema(auto_id=coll.get("auto_id", False), enable_dynamic_field=coll.get("dynamic", False),
                                       description=coll.get("description", ""))
        for f in coll["fields"]:
            kw = {}
            if "dim" in f:
                kw["dim"] = f["dim"]
            if "max_length" in f:
                kw["max_length"] = f["max_length"]
            s.add_field(f["name"], TYPES[f["type"]], is_primary=f.get("primary", False),
                        is_partition_key=f.get("partition_key", False), **kw)
        ip = c.prepare_index_params()
        ix = coll["index"]
        ip.add_index(ix["field"], index_type=ix["index_type"], metric_type=ix["metric_type"], params=ix.get("params", {}))
        kw = {"num_partitions": coll["num_partitions"]} if coll.get("num_partitions") else {}
        c.create_collection(coll["name"], schema=s, index_params=ip, consistency_level=coll.get("consistency", "Bounded"), **kw)
        parts = coll.get("partitions", [])
        for p in parts:
            c.create_partition(coll["name"], p)
        n = coll["rows"]
        ids = list(range(1, n + 1))
        rnd.shuffle(ids)
        batch = coll.get("batch", 1000)
        for k in range(0, n, batch):
            rows = [row(coll, i, rnd) for i in ids[k:k + batch]]
            part = (["_default"] + parts)[(k // batch) % (len(parts) + 1)] if parts else None
            c.insert(coll["name"], rows, **({"partition_name": part} if part else {}))
            if coll.get("flush_each", False):
                c.flush(coll["name"])
        c.flush(coll["name"])
        if coll.get("release"):
            c.release_collection(coll["name"])


def row(coll, i, rnd):
    r = {}
    for f in coll["fields"]:
        t, name = f["type"], f["name"]
        if f.get("primary") and coll.get("auto_id"):
            continue
        if t == "int64":
            r[name] = i if f.get("primary") else rnd.randint(-2**62, 2**62)
        elif t == "int32":
            r[name] = rnd.randint(-2**31, 2**31 - 1)
        elif t == "varchar":
            # At most 14 bytes (Milvus counts max_length in bytes), unicode and quotes included.
            r[name] = f'k"{i}\\' if f.get("primary") else "ünï %d" % rnd.randint(0, 99999)
        elif t == "double":
            r[name] = rnd.random() * 1e6
        elif t == "float":
            r[name] = rnd.random()
        elif t == "bool":
            r[name] = rnd.random() < 0.5
        elif t == "json":
            r[name] = {"i": i, "tags": ["a", "b"][: i % 3]}
        elif t == "float_vector":
            r[name] = [rnd.uniform(-1, 1) for _ in range(f["dim"])]
        elif t == "sparse_float_vector":
            r[name] = {rnd.randrange(30000): rnd.random() for _ in range(1 + i % 7)}
        elif t == "binary_vector":
            r[name] = bytes(rnd.getrandbits(8) for _ in range(f["dim"] // 8))
    if coll.get("dynamic") and i % 2:
        r["extra"] = {"n": i, "s": "dyn"}
        r["score"] = i * 0.5
    return r


def main():
    uri, rest = sys.argv[1], sys.argv[2:]
    db, conn = "default", {}
    while rest[:1] in (["--db"], ["--token"], ["--ca"]):
        opt, val, rest = rest[0], rest[1], rest[2:]
        if opt == "--db":
            db = val
        elif opt == "--token":
            conn["token"] = val
        else:
            conn["server_pem_path"] = val
    cmd, args = rest[0], rest[1:]
    if cmd == "seed" and db != "default":
        root = MilvusClient(uri=uri, **conn)
        if db not in root.list_databases():
            root.create_database(db)
    c = MilvusClient(uri=uri, db_name=db, **conn)
    if cmd == "digest":
        with_ids = "--no-ids" not in args
        for line in digest(c, [a for a in args if not a.startswith("--")], with_ids):
            print(json.dumps(line, sort_keys=True))
    elif cmd == "seed":
        seed(c, json.load(open(args[0])))
    elif cmd == "drop":
        for n in args or c.list_collections():
            c.drop_collection(n)
    elif cmd == "list":
        for n in sorted(c.list_collections()):
            print(n)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
