#!/usr/bin/env python3
"""A boto3 shim driven by the Rust tests over stdin/stdout, one JSON object
per line each way, so that the tests keep their assertions in Rust while the
requests come from a real boto3 client.

Request:  {"endpoint": URL, "ak": ..., "sk": ..., "op": "upload_part",
           "args": {...boto3 keyword arguments...}, "out": optional path}
  An argument value {"$file": path, "offset": n, "len": n} is replaced by
  those bytes of the file (a whole file without offset/len).
Response: {"ok": {...the boto3 response...}} where a streamed Body is read
  in full and replaced by {"len": n, "md5": hex} (and written to "out" when
  given), or {"err": {"code": ..., "message": ..., "status": n}}; an error
  that is not an S3 error answer (a cut connection, a short body) has the
  code "Client:<exception class>".
"""

import base64
import datetime
import hashlib
import json
import sys

import boto3
from botocore.config import Config

_clients = {}


def client(endpoint, ak, sk):
    k = (endpoint, ak, sk)
    if k not in _clients:
        _clients[k] = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"total_max_attempts": 1},
                read_timeout=300,
                connect_timeout=10,
            ),
        )
    return _clients[k]


def resolve(v):
    if isinstance(v, dict):
        if "$file" in v:
            with open(v["$file"], "rb") as f:
                f.seek(v.get("offset", 0))
                return f.read(v["len"]) if "len" in v else f.read()
        return {k: resolve(x) for k, x in v.items()}
    if isinstance(v, list):
        return [resolve(x) for x in v]
    return v


def plain(v):
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, (datetime.datetime, datetime.date)):
        return v.isoformat()
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return v


def call(req):
    c = client(req["endpoint"], req["ak"], req["sk"])
    try:
        # A null argument is an absent one.
        args = {k: v for k, v in resolve(req.get("args", {})).items() if v is not None}
        r = getattr(c, req["op"])(**args)
        body = r.pop("Body", None)
        if body is not None:
            data = body.read()
            r["Body"] = {"len": len(data), "md5": hashlib.md5(data).hexdigest()}
            if req.get("out"):
                with open(req["out"], "wb") as f:
                    f.write(data)
        r.pop("ResponseMetadata", None)
        return {"ok": plain(r)}
    except c.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        return {
            "err": {
                "code": err.get("Code", ""),
                "message": err.get("Message", ""),
                "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0),
            }
        }
    except Exception as e:  # noqa: BLE001 - reported to the test, which decides
        return {"err": {"code": "Client:" + type(e).__name__, "message": str(e), "status": 0}}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        sys.stdout.write(json.dumps(call(json.loads(line))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
