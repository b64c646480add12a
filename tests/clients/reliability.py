#!/usr/bin/env python3
"""boto3 workloads for tests/e2e/reliability.rs and tests/e2e/load.rs. Every
request is bounded (connect and read timeouts, no SDK retries: the tests count
every failure); results are JSON on stdout, asserted on by the Rust tests.

  reliability.py faults ENDPOINT BUCKET SECONDS SEED
      For SECONDS, 4 clients start PutObjects of varied sizes and (one job in
      twenty) multipart uploads, while the test kills and restarts the store.
      A failed step is tried 4 times.
      Prints [{"key", "size", "md5", "attempts": [...], "ok": bool}, ...].
  reliability.py verify ENDPOINT BUCKET KEY...
      GETs each key; prints {key: {"status", "code", "len", "md5"}}.
  reliability.py load ENDPOINT BUCKET THREADS SECONDS
      THREADS clients, each on its own prefix, a mix of put / get / ranged
      get / list / delete, every read checked against what was written.
      Prints {"ops": {op: n}, "errors": [...], "latency_ms": {...}}.

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment.
"""

import concurrent.futures
import hashlib
import json
import os
import random
import sys
import threading
import time

import boto3
import botocore.exceptions
from botocore.config import Config

MIB = 1024 * 1024


def client(endpoint, read_timeout=30):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=read_timeout,
            max_pool_connections=4,
        ),
    )


def data_for(key, size, seed):
    return random.Random(f"{seed}/{key}").randbytes(size)


def md5(b):
    return hashlib.md5(b).hexdigest()


def attempt(fn):
    """Runs one request; returns (result, {"ok", "status", "code", "exc", "secs"})."""
    t = time.monotonic()
    try:
        r = fn()
        return r, {"ok": True, "secs": round(time.monotonic() - t, 3)}
    except botocore.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        return None, {
            "ok": False,
            "status": meta.get("HTTPStatusCode"),
            "code": err.get("Code"),
            "secs": round(time.monotonic() - t, 3),
        }
    except Exception as e:  # a cut connection, a timeout
        return None, {
            "ok": False,
            "exc": type(e).__name__,
            "msg": str(e)[:200],
            "secs": round(time.monotonic() - t, 3),
        }


def with_retries(fn, attempts, tries=4):
    for i in range(tries):
        r, a = attempt(fn)
        attempts.append(a)
        if a["ok"]:
            return r, True
        time.sleep(1.0 + i)
    return None, False


def faults(endpoint, bucket, seconds, seed):
    sizes = [0, 1, 1000, 65535, 65536, 65537, 200_000, 1 * MIB + 7, 3 * MIB]
    local = threading.local()

    def c():
        if not hasattr(local, "c"):
            local.c = client(endpoint)
        return local.c

    def put(i):
        key = f"put-{i:03d}"
        size = sizes[i % len(sizes)]
        body = data_for(key, size, seed)
        attempts = []
        _, ok = with_retries(lambda: c().put_object(Bucket=bucket, Key=key, Body=body), attempts)
        return {"key": key, "size": size, "md5": md5(body), "attempts": attempts, "ok": ok}

    def multipart(i):
        key = f"multipart-{i}"
        part = 5 * MIB
        sizes_ = [part, part, 2 * MIB + 3]
        body = data_for(key, sum(sizes_), seed)
        attempts = []
        r, ok = with_retries(lambda: c().create_multipart_upload(Bucket=bucket, Key=key), attempts)
        if ok:
            uid = r["UploadId"]
            parts = []
            off = 0
            for n_, s in enumerate(sizes_, 1):
                chunk = body[off:off + s]
                off += s
                r, ok = with_retries(
                    lambda: c().upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n_, Body=chunk),
                    attempts,
                )
                if not ok:
                    break
                parts.append({"PartNumber": n_, "ETag": r["ETag"]})
            if ok:
                _, ok = with_retries(
                    lambda: c().complete_multipart_upload(
                        Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts}
                    ),
                    attempts,
                )
            if not ok:
                attempt(lambda: c().abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid))
        return {"key": key, "size": len(body), "md5": md5(body), "attempts": attempts, "ok": ok}

    deadline = time.monotonic() + seconds
    counter = iter(range(1_000_000))
    lock = threading.Lock()

    def worker(_):
        out = []
        while time.monotonic() < deadline:
            with lock:
                i = next(counter)
            out.append(multipart(i) if i % 20 == 19 else put(i))
        return out

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        out = [r for rs in ex.map(worker, range(4)) for r in rs]
    print(json.dumps(out))


def verify(endpoint, bucket, keys):
    c = client(endpoint, read_timeout=60)
    out = {}
    for k in keys:
        r, a = attempt(lambda: c.get_object(Bucket=bucket, Key=k))
        if a["ok"]:
            try:
                b = r["Body"].read()
                out[k] = {"status": 200, "len": len(b), "md5": md5(b)}
            except Exception as e:
                out[k] = {"status": 200, "exc": type(e).__name__}
        else:
            out[k] = {"status": a.get("status"), "code": a.get("code"), "exc": a.get("exc")}
    print(json.dumps(out))


def load(endpoint, bucket, threads, seconds):
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    ops = {}
    errors = []
    lat = {}

    def record(op, secs, err=None):
        with lock:
            ops[op] = ops.get(op, 0) + 1
            lat.setdefault(op, []).append(secs)
            if err:
                errors.append(f"{op}: {err}")

    def worker(t):
        c = client(endpoint, read_timeout=60)
        rnd = random.Random(t)
        mine = {}  # key -> bytes
        n = 0
        while time.monotonic() < deadline:
            r = rnd.random()
            t0 = time.monotonic()
            try:
                if r < 0.30 or len(mine) < 3:
                    n += 1
                    key = f"t{t:02d}/o{n:05d}"
                    size = rnd.choice([0, 100, 4096, 65536, 65537, 150_000, 400_000])
                    body = rnd.randbytes(size)
                    c.put_object(Bucket=bucket, Key=key, Body=body)
                    mine[key] = body
                    record("put", time.monotonic() - t0)
                elif r < 0.55:
                    key = rnd.choice(sorted(mine))
                    got = c.get_object(Bucket=bucket, Key=key)["Body"].read()
                    record("get", time.monotonic() - t0, None if got == mine[key] else f"{key}: wrong bytes")
                elif r < 0.75:
                    key = rnd.choice(sorted(mine))
                    body = mine[key]
                    if not body:
                        continue
                    a = rnd.randrange(len(body))
                    b = min(len(body) - 1, a + rnd.randrange(1, 100_000))
                    got = c.get_object(Bucket=bucket, Key=key, Range=f"bytes={a}-{b}")["Body"].read()
                    record("ranged_get", time.monotonic() - t0, None if got == body[a:b + 1] else f"{key} {a}-{b}: wrong bytes")
                elif r < 0.88:
                    resp = c.list_objects_v2(Bucket=bucket, Prefix=f"t{t:02d}/")
                    listed = {o["Key"]: o["Size"] for o in resp.get("Contents", [])}
                    want = {k: len(v) for k, v in mine.items()}
                    err = None
                    if not resp.get("IsTruncated") and listed != want:
                        err = f"listing differs: {len(listed)} listed, {len(want)} expected"
                    record("list", time.monotonic() - t0, err)
                else:
                    key = rnd.choice(sorted(mine))
                    c.delete_object(Bucket=bucket, Key=key)
                    del mine[key]
                    record("delete", time.monotonic() - t0)
            except Exception as e:
                code = getattr(e, "response", {}).get("Error", {}).get("Code") if hasattr(e, "response") else None
                record("error", time.monotonic() - t0, f"{type(e).__name__} {code or ''} {str(e)[:150]}")

    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        list(ex.map(worker, range(threads)))
    pct = {}
    for op, v in lat.items():
        v.sort()
        pct[op] = {
            "p50": round(1000 * v[len(v) // 2], 1),
            "p99": round(1000 * v[min(len(v) - 1, int(len(v) * 0.99))], 1),
            "max": round(1000 * v[-1], 1),
        }
    print(json.dumps({"ops": ops, "errors": errors[:50], "error_count": len(errors), "latency_ms": pct}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "faults":
        faults(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "verify":
        verify(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "load":
        load(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit(f"unknown command {cmd}")
