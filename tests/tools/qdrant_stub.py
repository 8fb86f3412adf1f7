"""A stub of Qdrant's REST API (v1.x) for drctl's contract test: no Qdrant server runs where
drctl is tested. It implements exactly the documented endpoints drctl calls, with Qdrant's
response envelope ({"result": ..., "status": "ok", "time": ...}), the `api-key` header, and
snapshot checksums (SHA-256), and keeps a log of every request for the test to inspect.

  qdrant_stub.py PORT API_KEY [--fail-download COLLECTION] [--empty]

--empty starts with no collections (a restore target).

Endpoints (Qdrant's):
  GET    /                                        version
  GET    /collections                             list
  GET    /collections/{c}                         info (points_count), 404 when missing
  DELETE /collections/{c}                         delete the collection
  POST   /collections/{c}/points/count            {"exact": true} -> {"count": N}
  POST   /collections/{c}/snapshots?wait=true     create a snapshot
  GET    /collections/{c}/snapshots               list snapshots
  GET    /collections/{c}/snapshots/{s}           download
  DELETE /collections/{c}/snapshots/{s}           delete
  POST   /collections/{c}/snapshots/upload?priority=snapshot[&checksum=...]
                                                  recover from an uploaded snapshot (multipart
                                                  field `snapshot`), creating or replacing {c}
Test-only (not Qdrant's): GET /_stub/log, GET /_stub/points/{c}.
"""
import argparse
import email.parser
import hashlib
import json
import random
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("api_key")
parser.add_argument("--fail-download")
parser.add_argument("--empty", action="store_true")
args = parser.parse_args()
port, api_key, fail_download = args.port, args.api_key, args.fail_download

rng = random.Random(11)
collections = {
    name: [{"id": i, "vector": [rng.random() for _ in range(dim)], "payload": {"n": i, "name": f"{name}-{i}"}}
           for i in range(n)]
    for name, n, dim in ([] if args.empty else [("products", 6000, 16), ("reviews", 1500, 8)])
}
snapshots = {}  # collection -> {snapshot name: bytes}
log = []
lock = threading.Lock()
counter = [0]


def snapshot_bytes(name):
    # A real snapshot is a tar archive; the stub's is the collection as JSON, which is enough
    # to check that the bytes drctl uploads are the bytes it downloaded.
    return json.dumps({"collection": name, "points": collections[name]}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, result=None, body=None, error=None):
        if body is None:
            env = {"time": 0.001}
            if error is None:
                env.update(status="ok", result=result)
            else:
                env.update(status={"error": error})
            body = json.dumps(env).encode()
            ctype = "application/json"
        else:
            ctype = "application/octet-stream"
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length", 0)))

    def route(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/") if p]
        body = self.read_body() if method in ("POST", "PUT") else b""
        with lock:
            log.append([method, url.path, query, self.headers.get("api-key")])
        if parts[:1] == ["_stub"]:
            if parts[1:] == ["log"]:
                return self.reply(200, log)
            return self.reply(200, collections.get(parts[2]))
        if self.headers.get("api-key") != api_key:
            return self.reply(403, error="Invalid api-key")
        if method == "GET" and not parts:
            return self.reply(200, body=json.dumps({"title": "qdrant - vector search engine", "version": "1.12.0"}).encode())
        if parts == ["collections"] and method == "GET":
            return self.reply(200, {"collections": [{"name": n} for n in sorted(collections)]})
        if len(parts) < 2 or parts[0] != "collections":
            return self.reply(404, error="Not found")
        name = parts[1]
        rest = parts[2:]
        if rest == ["snapshots", "upload"] and method == "POST":
            if query.get("priority") not in (None, "snapshot", "replica", "no_sync"):
                return self.reply(400, error="bad priority")
            msg = email.parser.BytesParser().parsebytes(
                b"content-type: " + self.headers["content-type"].encode() + b"\r\n\r\n" + body)
            data = None
            for part in msg.get_payload():
                if part.get_param("name", header="content-disposition") == "snapshot":
                    data = part.get_payload(decode=True)
            if data is None:
                return self.reply(400, error="no snapshot part")
            if "checksum" in query and hashlib.sha256(data).hexdigest() != query["checksum"]:
                return self.reply(400, error="Snapshot checksum mismatch")
            collections[name] = json.loads(data)["points"]
            return self.reply(200, True)
        if name not in collections:
            return self.reply(404, error=f"Collection `{name}` doesn't exist!")
        if not rest and method == "GET":
            return self.reply(200, {"status": "green", "points_count": len(collections[name])})
        if not rest and method == "DELETE":
            del collections[name]
            return self.reply(200, True)
        if rest == ["points", "count"] and method == "POST":
            if json.loads(body or b"{}").get("exact") is not True:
                return self.reply(400, error="drctl must ask for an exact count")
            return self.reply(200, {"count": len(collections[name])})
        if rest == ["snapshots"] and method == "POST":
            with lock:
                counter[0] += 1
                snap = f"{name}-{counter[0]}-2026-11-23-12-00-00.snapshot"
            data = snapshot_bytes(name)
            snapshots.setdefault(name, {})[snap] = data
            return self.reply(200, {"name": snap, "creation_time": "2026-11-23T12:00:00",
                                    "size": len(data), "checksum": hashlib.sha256(data).hexdigest()})
        if rest == ["snapshots"] and method == "GET":
            return self.reply(200, [{"name": s, "size": len(d)} for s, d in snapshots.get(name, {}).items()])
        if len(rest) == 2 and rest[0] == "snapshots":
            data = snapshots.get(name, {}).get(rest[1])
            if data is None:
                return self.reply(404, error="Snapshot not found")
            if method == "DELETE":
                del snapshots[name][rest[1]]
                return self.reply(200, True)
            if method == "GET":
                if name == fail_download:
                    # Promise the whole snapshot, send half, and hang up.
                    self.send_response(200)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    time.sleep(0.2)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                return self.reply(200, body=data)
        return self.reply(404, error="Not found")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
