"""The tests' independent observer of an Azure Blob endpoint (Azurite): Shared Key signing from
the documented algorithm, Python's standard library only, so it shares no code with drctl's
OpenDAL client.

Usage:
  azure_blob.py ENDPOINT ACCOUNT KEY create-container NAME
  azure_blob.py ENDPOINT ACCOUNT KEY list NAME PREFIX     (one line per blob: name, size,
                                                           and "uncommitted" for a blob that
                                                           holds only uncommitted blocks)
  azure_blob.py ENDPOINT ACCOUNT KEY put NAME BLOB FILE
"""

import base64
import hashlib
import hmac
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from email.utils import formatdate

VERSION = "2021-08-06"


def request(endpoint, account, key, method, path, query, body=b"", headers=None):
    headers = dict(headers or {})
    if method in ("PUT", "POST"):
        headers.setdefault("Content-Type", "application/octet-stream")  # urllib would add its own
    headers["x-ms-date"] = formatdate(usegmt=True)
    headers["x-ms-version"] = VERSION
    length = str(len(body)) if body else ""
    canon_headers = "".join(
        f"{k}:{v}\n" for k, v in sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-ms-"))
    )
    # Path-style (the emulator): the account appears twice, as Azure documents.
    canon_resource = f"/{account}{urllib.parse.urlparse(endpoint).path.rstrip('/')}{path}"
    for k in sorted(query):
        canon_resource += f"\n{k.lower()}:{query[k]}"
    to_sign = "\n".join(
        [
            method,
            "",  # Content-Encoding
            "",  # Content-Language
            length,
            "",  # Content-MD5
            headers.get("Content-Type", ""),
            "",  # Date (x-ms-date is used)
            "",
            "",
            "",
            "",
            "",  # If-* and Range
        ]
    ) + "\n" + canon_headers + canon_resource
    sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {account}:{sig}"
    url = endpoint.rstrip("/") + urllib.parse.quote(path) + ("?" + urllib.parse.urlencode(query) if query else "")
    req = urllib.request.Request(url, data=body if method in ("PUT", "POST") else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    endpoint, account, key, cmd, container = sys.argv[1:6]
    if cmd == "create-container":
        status, body = request(endpoint, account, key, "PUT", f"/{container}", {"restype": "container"})
        if status not in (201, 409):
            sys.exit(f"create container: {status} {body!r}")
    elif cmd == "list":
        prefix = sys.argv[6]
        marker = ""
        while True:
            q = {"restype": "container", "comp": "list", "prefix": prefix, "include": "uncommittedblobs"}
            if marker:
                q["marker"] = marker
            status, body = request(endpoint, account, key, "GET", f"/{container}", q)
            if status != 200:
                sys.exit(f"list: {status} {body!r}")
            root = ET.fromstring(body)
            for b in root.iter("Blob"):
                name = b.findtext("Name")
                size = b.findtext("Properties/Content-Length") or "0"
                # A blob with only uncommitted blocks (an upload cut short) is listed with
                # include=uncommittedblobs, but has no properties to read: HEAD answers 404.
                head, _ = request(endpoint, account, key, "HEAD", f"/{container}/{name}", {})
                state = "committed" if head == 200 else "uncommitted"
                print(f"{name}\t{size}\t{state}")
            marker = root.findtext("NextMarker") or ""
            if not marker:
                break
    elif cmd == "put":
        blob, path = sys.argv[6], sys.argv[7]
        with open(path, "rb") as f:
            data = f.read()
        status, body = request(
            endpoint, account, key, "PUT", f"/{container}/{blob}", {}, data, {"x-ms-blob-type": "BlockBlob"}
        )
        if status != 201:
            sys.exit(f"put: {status} {body!r}")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
