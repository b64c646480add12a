#!/usr/bin/env python3
"""boto3 (and curl, for presigned URLs) against a running sealgate, as a user
would drive it. Run by tests/e2e/clients_boto3.rs:

    boto3_suite.py --endpoint http://127.0.0.1:P [--tls-endpoint https://127.0.0.1:T
                   --ca cert.pem] --bucket B --workdir DIR CASE...

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Each case
prints `PASS name` or `FAIL name: reason` (with a traceback); the exit status
is 1 when any case failed. Every content check is byte for byte.
"""

import argparse
import base64
import hashlib
import io
import os
import time
import socket
import subprocess
import sys
import traceback
import zlib

import boto3
import botocore
import botocore.httpchecksum
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

MiB = 1024 * 1024

# Virtual-hosted-style names (BUCKET.localhost) do not resolve on this
# machine; resolve them as a DNS wildcard would. The Host header the gateway
# sees is the real virtual-hosted one.
_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *a, **kw):
    if isinstance(host, str) and host.endswith(".localhost"):
        host = "127.0.0.1"
    return _real_getaddrinfo(host, *a, **kw)


socket.getaddrinfo = _getaddrinfo


def data_of(n, seed):
    """Deterministic, incompressible bytes."""
    out = bytearray()
    block = hashlib.sha256(b"seed-%d" % seed).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def fast_data(n, seed):
    # Large payloads: a random block repeated with a counter, cheap to build.
    base = os.urandom(MiB) if seed is None else data_of(MiB, seed)
    parts = []
    i = 0
    while len(parts) * (MiB + 8) < n:
        parts.append(i.to_bytes(8, "little") + base)
        i += 1
    return b"".join(parts)[:n]


# --- independent checksum implementations (expected values) -----------------


def _crc_table(poly, width):
    mask = (1 << width) - 1
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t.append(c & mask)
    return t


_CRC32C = _crc_table(0x82F63B78, 32)
_CRC64NVME = _crc_table(0x9A6C9329AC4BC9B5, 64)


def _crc(table, width, data):
    mask = (1 << width) - 1
    c = mask
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return (c ^ mask).to_bytes(width // 8, "big")


def expected_checksum(alg, data):
    if alg == "CRC32":
        raw = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    elif alg == "CRC32C":
        raw = _crc(_CRC32C, 32, data)
    elif alg == "CRC64NVME":
        raw = _crc(_CRC64NVME, 64, data)
    elif alg == "SHA1":
        raw = hashlib.sha1(data).digest()
    elif alg == "SHA256":
        raw = hashlib.sha256(data).digest()
    else:
        raise ValueError(alg)
    return base64.b64encode(raw).decode()


def have_crt():
    try:
        import awscrt  # noqa: F401

        return True
    except ImportError:
        return False


def checksum_algorithms():
    """What the installed botocore can compute itself."""
    algs = ["CRC32", "SHA1", "SHA256"]
    if have_crt():
        algs.append("CRC32C")
        if hasattr(botocore.httpchecksum, "CrtCrc64NvmeChecksum"):
            algs.append("CRC64NVME")
    return algs


# --- harness -----------------------------------------------------------------


class Ctx:
    def __init__(self, args):
        self.args = args
        self.bucket = args.bucket
        self.workdir = args.workdir
        self.sent = []  # (operation, headers) of requests sent, for assertions

    def client(self, endpoint=None, style="path", verify=None, **cfg):
        endpoint = endpoint or self.args.endpoint
        c = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            verify=verify,
            config=Config(
                s3={"addressing_style": style},
                **{"retries": {"total_max_attempts": 2}, "read_timeout": 120, **cfg},
            ),
        )
        c.meta.events.register("before-send.s3", self._record)
        return c

    def tls_client(self, **kw):
        if not self.args.tls_endpoint:
            raise RuntimeError("no --tls-endpoint given")
        return self.client(self.args.tls_endpoint, verify=self.args.ca, **kw)

    def _record(self, request, **kw):
        name = kw.get("event_name", "")
        hs = {}
        for k, v in request.headers.items():
            hs[k.lower()] = v.decode() if isinstance(v, bytes) else v
        self.sent.append((name.split(".")[-1], hs))

    def headers_of(self, op):
        return [h for (o, h) in self.sent if o == op]

    def ensure_bucket(self, c, bucket=None):
        bucket = bucket or self.bucket
        try:
            c.head_bucket(Bucket=bucket)
        except ClientError:
            c.create_bucket(Bucket=bucket)

    def path(self, name):
        return os.path.join(self.workdir, name)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        g, w = got, want
        if isinstance(g, bytes) and isinstance(w, bytes) and max(len(g), len(w)) > 64:
            g = "<%d bytes md5 %s>" % (len(g), hashlib.md5(g).hexdigest())
            w = "<%d bytes md5 %s>" % (len(w), hashlib.md5(w).hexdigest())
        raise AssertionError("%s: got %r, want %r" % (what, g, w))


def error_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response.get("Error", {}).get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def curl(*args):
    p = subprocess.run(["curl", "-sS", "--fail-with-body", *args], capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


# --- cases -------------------------------------------------------------------


def round_trips(ctx, c, prefix):
    """put/get/head with metadata, ranges and copy through client `c`."""
    ctx.ensure_bucket(c)
    b = ctx.bucket
    for name, size in [("empty", 0), ("one", 1), ("seg", 65536), ("small", 100_000), ("mib", MiB + 3)]:
        key = "%s/%s" % (prefix, name)
        data = data_of(size, size + 1)
        r = c.put_object(
            Bucket=b,
            Key=key,
            Body=data,
            Metadata={"color": "blue", "Mixed-Case": "Value 1"},
            ContentType="application/x-sealgate-test",
            CacheControl="max-age=60",
            ContentDisposition='attachment; filename="x.bin"',
        )
        md5 = hashlib.md5(data).hexdigest()
        eq(r["ETag"].strip('"'), md5, key + " put ETag")
        h = c.head_object(Bucket=b, Key=key)
        eq(h["ContentLength"], size, key + " head ContentLength")
        eq(h["ETag"].strip('"'), md5, key + " head ETag")
        eq(h["ContentType"], "application/x-sealgate-test", key + " ContentType")
        eq(h.get("CacheControl"), "max-age=60", key + " CacheControl")
        eq(h.get("ContentDisposition"), 'attachment; filename="x.bin"', key + " ContentDisposition")
        eq(h["Metadata"], {"color": "blue", "mixed-case": "Value 1"}, key + " metadata")
        g = c.get_object(Bucket=b, Key=key)
        eq(g["Body"].read(), data, key + " body")
        eq(g["Metadata"], {"color": "blue", "mixed-case": "Value 1"}, key + " get metadata")
        if size > 1000:
            g = c.get_object(Bucket=b, Key=key, Range="bytes=10-999")
            eq(g["Body"].read(), data[10:1000], key + " range body")
            eq(g["ContentRange"], "bytes 10-999/%d" % size, key + " ContentRange")
            g = c.get_object(Bucket=b, Key=key, Range="bytes=-7")
            eq(g["Body"].read(), data[-7:], key + " suffix range")
    # Conditional reads on the plaintext ETag.
    key = "%s/mib" % prefix
    tag = c.head_object(Bucket=b, Key=key)["ETag"]
    eq(error_code(lambda: c.get_object(Bucket=b, Key=key, IfNoneMatch=tag))[1], 304, "If-None-Match")
    eq(error_code(lambda: c.get_object(Bucket=b, Key=key, IfMatch='"0123"'))[0], "PreconditionFailed", "If-Match")
    eq(len(c.get_object(Bucket=b, Key=key, IfMatch=tag)["Body"].read()), MiB + 3, "If-Match hit")
    # Copy with metadata replaced.
    src = "%s/small" % prefix
    c.copy_object(
        Bucket=b,
        Key=src + ".copy",
        CopySource={"Bucket": b, "Key": src},
        MetadataDirective="REPLACE",
        Metadata={"shade": "green"},
        ContentType="text/plain",
    )
    h = c.head_object(Bucket=b, Key=src + ".copy")
    eq(h["Metadata"], {"shade": "green"}, "copy metadata")
    eq(h["ContentType"], "text/plain", "copy ContentType")
    eq(c.get_object(Bucket=b, Key=src + ".copy")["Body"].read(), data_of(100_000, 100_001), "copy body")
    # Missing keys.
    try:
        c.get_object(Bucket=b, Key=prefix + "/missing")
        raise AssertionError("get of a missing key succeeded")
    except c.exceptions.NoSuchKey as e:
        eq(e.response["Error"]["Code"], "NoSuchKey", "missing key code")
        eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 404, "missing key status")
    eq(error_code(lambda: c.head_object(Bucket=b, Key=prefix + "/missing")), ("404", 404), "head missing")
    eq(error_code(lambda: c.get_object(Bucket=b + "-nope", Key="x"))[0], "NoSuchBucket", "missing bucket")
    # Delete.
    c.delete_object(Bucket=b, Key=src + ".copy")
    eq(error_code(lambda: c.head_object(Bucket=b, Key=src + ".copy")), ("404", 404), "head after delete")


def back_to_back_puts(ctx, c, prefix):
    """Empty PutObjects followed by others on the same connection. botocore
    sends `Expect: 100-continue` even for an empty body; the answer then comes
    without a `100 Continue`, which botocore mishandles on the connection's
    next request (it waited for its read timeout) unless the server closes
    the connection."""
    ctx.ensure_bucket(c)
    seq = [b"", b"x" * 10, b"", b"", data_of(3000, 1), b""]
    for i, d in enumerate(seq):
        t = time.time()
        c.put_object(Bucket=ctx.bucket, Key="%s/seq%d" % (prefix, i), Body=d)
        check(time.time() - t < 5, "PutObject %d after an empty one took %.1f s" % (i, time.time() - t))
    for i, d in enumerate(seq):
        eq(c.get_object(Bucket=ctx.bucket, Key="%s/seq%d" % (prefix, i))["Body"].read(), d, "seq%d" % i)


def odd_keys(ctx, c, prefix):
    """Keys that need escaping, in requests and in (url-encoded) listings."""
    ctx.ensure_bucket(c)
    names = [
        "sp ace",
        "plus+sign",
        "percent%20x",
        "amp&eq=q?",
        "tilde~star*paren()",
        "ünï/日本語/ñ",
        "semi;colon,comma:colon@at$",
        "quote'dq\"",
        "back\\slash",
        "hash#frag",
        "trailing space ",
        "brackets[]{}<>^|`",
    ]
    keys = ["%s/%s" % (prefix, n) for n in names]
    for i, k in enumerate(keys):
        c.put_object(Bucket=ctx.bucket, Key=k, Body=data_of(i + 1, i))
    for i, k in enumerate(keys):
        eq(c.get_object(Bucket=ctx.bucket, Key=k)["Body"].read(), data_of(i + 1, i), "odd key %r" % k)
    listed = [o["Key"] for o in c.list_objects_v2(Bucket=ctx.bucket, Prefix=prefix + "/")["Contents"]]
    eq(listed, sorted(keys, key=lambda k: k.encode()), "odd keys listed (v2)")
    listed = [o["Key"] for o in c.list_objects(Bucket=ctx.bucket, Prefix=prefix + "/")["Contents"]]
    eq(listed, sorted(keys, key=lambda k: k.encode()), "odd keys listed (v1)")
    src = keys[3]
    c.copy_object(Bucket=ctx.bucket, Key=src + ".copy", CopySource={"Bucket": ctx.bucket, "Key": src})
    eq(c.get_object(Bucket=ctx.bucket, Key=src + ".copy")["Body"].read(), data_of(4, 3), "copy of an odd key")
    r = c.delete_objects(Bucket=ctx.bucket, Delete={"Objects": [{"Key": k} for k in keys + [src + ".copy"]]})
    eq(sorted(d["Key"] for d in r["Deleted"]), sorted(keys + [src + ".copy"]), "odd keys deleted")


def s3_semantics(ctx, c, prefix):
    """Keys of whitespace only (aws-sdk-s3 cannot send them; botocore can),
    leading and trailing whitespace, through put, get, head, copy,
    UploadPartCopy, listings (botocore asks for encoding-type=url and decodes)
    and delete_objects; GetObjectAttributes; unicode metadata as RFC 2047
    encoded words; max-keys=0."""
    ctx.ensure_bucket(c)
    b = ctx.bucket
    keys = [" ", "   ", "\t", "  lead", "trail \t "]
    for i, k in enumerate(keys):
        c.put_object(Bucket=b, Key=k, Body=data_of(100 + i, i))
    for i, k in enumerate(keys):
        eq(c.get_object(Bucket=b, Key=k)["Body"].read(), data_of(100 + i, i), "get %r" % k)
        eq(c.head_object(Bucket=b, Key=k)["ContentLength"], 100 + i, "head %r" % k)
    c.copy_object(Bucket=b, Key=" .copy", CopySource={"Bucket": b, "Key": " "})
    eq(c.get_object(Bucket=b, Key=" .copy")["Body"].read(), data_of(100, 0), "copy of ' '")
    # A multipart object at a blank key: one uploaded part, one copied from
    # a blank key.
    first = data_of(5 * MiB, 9)
    up = c.create_multipart_upload(Bucket=b, Key="    ")["UploadId"]
    e1 = c.upload_part(Bucket=b, Key="    ", UploadId=up, PartNumber=1, Body=first)["ETag"]
    e2 = c.upload_part_copy(
        Bucket=b, Key="    ", UploadId=up, PartNumber=2, CopySource={"Bucket": b, "Key": "   "}
    )["CopyPartResult"]["ETag"]
    c.complete_multipart_upload(
        Bucket=b,
        Key="    ",
        UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    eq(c.get_object(Bucket=b, Key="    ")["Body"].read(), first + data_of(101, 1), "multipart at a blank key")
    a = c.get_object_attributes(
        Bucket=b, Key="    ", ObjectAttributes=["ETag", "ObjectSize", "ObjectParts", "StorageClass"]
    )
    eq(a["ObjectSize"], 5 * MiB + 101, "GetObjectAttributes ObjectSize")
    eq(a["ObjectParts"]["TotalPartsCount"], 2, "GetObjectAttributes TotalPartsCount")
    eq([p["Size"] for p in a["ObjectParts"]["Parts"]], [5 * MiB, 101], "GetObjectAttributes part sizes")
    eq(a["StorageClass"], "STANDARD", "GetObjectAttributes StorageClass")
    a = c.get_object_attributes(Bucket=b, Key=" ", ObjectAttributes=["ETag", "ObjectSize"])
    eq(a["ETag"].strip('"'), hashlib.md5(data_of(100, 0)).hexdigest(), "GetObjectAttributes ETag")
    eq(a["ObjectSize"], 100, "GetObjectAttributes ObjectSize")
    check("ObjectParts" not in a, "ObjectParts not asked for: %r" % a)
    everything = sorted(keys + [" .copy", "    "], key=lambda k: k.encode())
    listed = [o["Key"] for o in c.list_objects_v2(Bucket=b)["Contents"]]
    eq(listed, everything, "blank keys listed (v2, url-encoded by botocore)")
    listed = [o["Key"] for o in c.list_objects(Bucket=b)["Contents"]]
    eq(listed, everything, "blank keys listed (v1, url-encoded by botocore)")
    r = c.list_objects_v2(Bucket=b, MaxKeys=0)
    eq((r["KeyCount"], r["IsTruncated"], "Contents" in r), (0, False, False), "max-keys=0")
    # Unicode metadata: botocore refuses non-ASCII, so users send encoded
    # words; S3 answers them B-encoded.
    word = "=?UTF-8?B?%s?=" % base64.b64encode("Grüße, 日本".encode()).decode()
    c.put_object(Bucket=b, Key="meta", Body=b"m", Metadata={"greeting": word, "plain": "as is"})
    eq(c.head_object(Bucket=b, Key="meta")["Metadata"], {"greeting": word, "plain": "as is"}, "unicode metadata")
    try:
        c.put_object(Bucket=b, Key="meta2", Body=b"m", Metadata={"greeting": "Grüße"})
        raise AssertionError("botocore sent a non-ASCII metadata value")
    except botocore.exceptions.ParamValidationError:
        pass
    r = c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in everything + ["meta"]]})
    eq(sorted(d["Key"] for d in r["Deleted"]), sorted(everything + ["meta"]), "blank keys deleted")
    eq(r.get("Errors", []), [], "delete errors")
    eq(c.list_objects_v2(Bucket=b).get("KeyCount"), 0, "nothing left")


def case_s3_semantics(ctx):
    s3_semantics(ctx, ctx.client(), "sem")


def case_basic(ctx):
    back_to_back_puts(ctx, ctx.client(read_timeout=10, retries={"total_max_attempts": 1}), "basic")
    round_trips(ctx, ctx.client(), "basic")
    odd_keys(ctx, ctx.client(), "odd")
    # Over plain http, botocore signs the payload's SHA-256.
    puts = ctx.headers_of("PutObject")
    check(puts, "no PutObject seen")
    sha = puts[-1].get("x-amz-content-sha256", "")
    check(len(sha) == 64, "http PutObject payload hash mode: %r" % sha)


def case_listing(ctx):
    c = ctx.client()
    ctx.ensure_bucket(c)
    b = ctx.bucket
    keys = ["list/k%02d" % i for i in range(7)] + ["list/sub/a", "list/sub/b"]
    sizes = {}
    for i, k in enumerate(keys):
        d = data_of(i * 10, i)
        sizes[k] = len(d)
        c.put_object(Bucket=b, Key=k, Body=d)
    # Manual pagination with MaxKeys.
    seen, pages, token = [], [], None
    while True:
        kw = {"Bucket": b, "Prefix": "list/", "MaxKeys": 4}
        if token:
            kw["ContinuationToken"] = token
        r = c.list_objects_v2(**kw)
        page = [o["Key"] for o in r.get("Contents", [])]
        eq(r["KeyCount"], len(page), "KeyCount")
        check(len(page) <= 4, "page longer than MaxKeys: %r" % page)
        for o in r.get("Contents", []):
            eq(o["Size"], sizes[o["Key"]], o["Key"] + " listed size")
        pages.append(page)
        seen += page
        if not r["IsTruncated"]:
            check("NextContinuationToken" not in r, "last page has a continuation token")
            break
        token = r["NextContinuationToken"]
    eq(seen, sorted(keys), "paginated keys")
    eq([len(p) for p in pages], [4, 4, 1], "page sizes")
    # The paginator, with a delimiter.
    pg = c.get_paginator("list_objects_v2")
    ks, cps = [], []
    for r in pg.paginate(Bucket=b, Prefix="list/", Delimiter="/", PaginationConfig={"PageSize": 3}):
        ks += [o["Key"] for o in r.get("Contents", [])]
        cps += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    eq(ks, sorted(keys[:7]), "paginator keys")
    eq(cps, ["list/sub/"], "common prefixes")
    # StartAfter, and V1 listing with markers.
    r = c.list_objects_v2(Bucket=b, Prefix="list/", StartAfter="list/k04")
    eq([o["Key"] for o in r["Contents"]], sorted(keys)[5:], "StartAfter")
    r = c.list_objects(Bucket=b, Prefix="list/", MaxKeys=5)
    check(r["IsTruncated"], "v1 truncated")
    r2 = c.list_objects(Bucket=b, Prefix="list/", Marker=r["Contents"][-1]["Key"])
    eq([o["Key"] for o in r["Contents"] + r2["Contents"]], sorted(keys), "v1 markers")
    # Bulk delete.
    r = c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in keys]})
    eq(sorted(d["Key"] for d in r["Deleted"]), sorted(keys), "deleted")
    eq(c.list_objects_v2(Bucket=b, Prefix="list/")["KeyCount"], 0, "empty after delete")


def tamper(url):
    """The URL with one character of its signature changed."""
    for name in ("X-Amz-Signature=", "Signature="):
        i = url.find(name)
        if i >= 0:
            j = i + len(name)
            return url[:j] + ("1" if url[j] == "0" else "0") + url[j + 1 :]
    raise AssertionError("no signature in %s" % url)


def case_presigned(ctx):
    # boto3's default for S3 presigned URLs at a custom endpoint in us-east-1
    # is the query-string SigV2 form; s3v4 gives X-Amz-Signature. Both.
    for version in ("default", "s3v4"):
        kw = {} if version == "default" else {"signature_version": "s3v4"}
        presigned(ctx, ctx.client(**kw), version)


def presigned(ctx, c, version):
    ctx.ensure_bucket(c)
    b = ctx.bucket
    p = "pre-" + version
    data = data_of(300_000, 42)
    c.put_object(Bucket=b, Key=p + "/get me", Body=data)
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": p + "/get me"}, ExpiresIn=300)
    if version == "s3v4":
        check("X-Amz-Signature=" in url, url)
    out = ctx.path("presigned-get")
    rc, _, err = curl("-o", out, url)
    eq(rc, 0, "curl presigned GET: " + err)
    eq(open(out, "rb").read(), data, version + " presigned GET body")
    # A ranged presigned GET (Range is not signed).
    rc, body, err = curl("-H", "Range: bytes=100-199", url)
    eq(rc, 0, "curl ranged presigned GET: " + err)
    eq(body, data[100:200], version + " presigned ranged GET body")
    # A tampered signature is refused.
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", tamper(url)], capture_output=True)
    eq(r.stdout, b"403", version + " tampered presigned URL")
    # Presigned PUT with curl, then read back through boto3.
    up = data_of(1_500_000, 43)
    src = ctx.path("presigned-put")
    open(src, "wb").write(up)
    purl = c.generate_presigned_url("put_object", Params={"Bucket": b, "Key": p + "/put me"}, ExpiresIn=300)
    rc, body, err = curl("-T", src, purl)
    eq(rc, 0, "curl presigned PUT: %s %s" % (err, body))
    eq(c.get_object(Bucket=b, Key=p + "/put me")["Body"].read(), up, version + " presigned PUT body")
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", src, tamper(purl)], capture_output=True)
    eq(r.stdout, b"403", version + " tampered presigned PUT")
    # Presigned PUT with a content type that is part of the signature.
    purl = c.generate_presigned_url(
        "put_object", Params={"Bucket": b, "Key": p + "/typed", "ContentType": "text/csv"}, ExpiresIn=300
    )
    rc, body, err = curl("-T", src, "-H", "Content-Type: text/csv", purl)
    eq(rc, 0, "curl presigned typed PUT: %s %s" % (err, body))
    eq(c.head_object(Bucket=b, Key=p + "/typed")["ContentType"], "text/csv", version + " presigned typed PUT")
    # Presigned GET of a missing key: 404 NoSuchKey.
    murl = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": p + "/none"}, ExpiresIn=300)
    r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", murl], capture_output=True)
    text = r.stdout.decode(errors="replace")
    check(text.endswith("\n404") and "NoSuchKey" in text, "presigned GET of a missing key: %r" % text)
    # An expired presigned URL is refused.
    if version == "s3v4":
        eurl = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": p + "/get me"}, ExpiresIn=1)
        time.sleep(2)
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", eurl], capture_output=True)
        eq(r.stdout, b"403", "expired presigned URL")


def case_virtual_host(ctx):
    port = ctx.args.endpoint.rsplit(":", 1)[1].strip("/")
    c = ctx.client(endpoint="http://localhost:%s" % port, style="virtual")
    ctx.ensure_bucket(c)
    odd_keys(ctx, c, "vh-odd")
    b = ctx.bucket
    data = data_of(200_000, 7)
    c.put_object(Bucket=b, Key="vh/a b+c", Body=data, Metadata={"k": "v"})
    eq(c.get_object(Bucket=b, Key="vh/a b+c")["Body"].read(), data, "virtual-hosted GET")
    eq(c.head_object(Bucket=b, Key="vh/a b+c")["Metadata"], {"k": "v"}, "virtual-hosted HEAD")
    r = c.list_objects_v2(Bucket=b, Prefix="vh/")
    eq([o["Key"] for o in r["Contents"]], ["vh/a b+c"], "virtual-hosted list")
    # The requests really went to BUCKET.localhost.
    urls = []
    c.meta.events.register("before-send.s3", lambda request, **kw: urls.append(request.url))
    c.head_object(Bucket=b, Key="vh/a b+c")
    check(urls and urls[-1].startswith("http://%s.localhost:%s/" % (b, port)), "not virtual-hosted: %r" % urls)
    # A virtual-hosted presigned URL with curl.
    url = c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "vh/a b+c"}, ExpiresIn=300)
    check(url.startswith("http://%s.localhost:%s/" % (b, port)), url)
    rc, body, err = curl("--resolve", "%s.localhost:%s:127.0.0.1" % (b, port), url)
    eq(rc, 0, "curl virtual-hosted presigned GET: " + err)
    eq(body, data, "virtual-hosted presigned GET body")
    c.delete_object(Bucket=b, Key="vh/a b+c")
    eq(error_code(lambda: c.head_object(Bucket=b, Key="vh/a b+c")), ("404", 404), "virtual-hosted delete")


def managed_transfers(ctx, c, prefix):
    ctx.ensure_bucket(c)
    b = ctx.bucket
    size = 20 * MiB + 123
    data = fast_data(size, None)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    key = prefix + "/big"
    c.upload_fileobj(io.BytesIO(data), b, key, Config=cfg, ExtraArgs={"Metadata": {"origin": "boto3"}})
    h = c.head_object(Bucket=b, Key=key)
    eq(h["ContentLength"], size, "multipart size")
    etag = h["ETag"].strip('"')
    md5s = b"".join(hashlib.md5(data[i : i + 8 * MiB]).digest() for i in range(0, size, 8 * MiB))
    eq(etag, "%s-3" % hashlib.md5(md5s).hexdigest(), "multipart ETag (md5 of part md5s)")
    eq(h["Metadata"], {"origin": "boto3"}, "multipart metadata")
    check(len(ctx.headers_of("UploadPart")) >= 3, "no multipart upload happened")
    # Managed download: ranged GETs in parallel.
    out = io.BytesIO()
    c.download_fileobj(b, key, out, Config=cfg)
    eq(out.getvalue(), data, "download_fileobj body")
    # One part by number.
    g = c.get_object(Bucket=b, Key=key, PartNumber=2)
    eq(g["Body"].read(), data[8 * MiB : 16 * MiB], "GetObject partNumber=2")
    eq(g.get("PartsCount"), 3, "PartsCount")
    # upload_file / download_file through files on disk.
    src = ctx.path(prefix.replace("/", "_") + "-file")
    open(src, "wb").write(data[: 9 * MiB])
    c.upload_file(src, b, key + "2", Config=cfg)
    dst = src + ".back"
    c.download_file(b, key + "2", dst, Config=cfg)
    eq(open(dst, "rb").read(), data[: 9 * MiB], "upload_file/download_file")
    # Managed copy: a multipart copy (UploadPartCopy) above the threshold.
    c.copy({"Bucket": b, "Key": key}, b, key + ".copy", Config=cfg)
    check(ctx.headers_of("UploadPartCopy"), "no UploadPartCopy seen")
    eq(c.head_object(Bucket=b, Key=key + ".copy")["ContentLength"], size, "managed copy size")
    out = io.BytesIO()
    c.download_fileobj(b, key + ".copy", out, Config=cfg)
    eq(out.getvalue(), data, "managed copy body")
    # Uploads left open are listed and can be aborted by their listed id.
    up = c.create_multipart_upload(Bucket=b, Key=key + ".open")["UploadId"]
    c.upload_part(Bucket=b, Key=key + ".open", UploadId=up, PartNumber=1, Body=data[:MiB])
    ups = c.list_multipart_uploads(Bucket=b, Prefix=prefix + "/").get("Uploads", [])
    eq([u["Key"] for u in ups], [key + ".open"], "list_multipart_uploads")
    parts = c.list_parts(Bucket=b, Key=key + ".open", UploadId=up)["Parts"]
    eq([(p["PartNumber"], p["Size"]) for p in parts], [(1, MiB)], "list_parts")
    c.abort_multipart_upload(Bucket=b, Key=key + ".open", UploadId=ups[0]["UploadId"])
    eq(c.list_multipart_uploads(Bucket=b, Prefix=prefix + "/").get("Uploads", []), [], "aborted")
    c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in (key, key + "2", key + ".copy")]})


def case_multipart(ctx):
    managed_transfers(ctx, ctx.client(), "mp")


def checksums(ctx, c, prefix):
    ctx.ensure_bucket(c)
    b = ctx.bucket
    data = data_of(70_000, 99)
    algs = checksum_algorithms()
    print("checksum algorithms computed by botocore %s: %s" % (botocore.__version__, ",".join(algs)))
    for alg in algs:
        key = "%s/%s" % (prefix, alg)
        want = expected_checksum(alg, data)
        r = c.put_object(Bucket=b, Key=key, Body=data, ChecksumAlgorithm=alg)
        eq(r.get("Checksum" + alg), want, key + " checksum in the PutObject answer")
        eq(c.get_object(Bucket=b, Key=key)["Body"].read(), data, key + " body")
    # Values the client computed itself, sent as headers; a wrong one is refused
    # with BadDigest and nothing is stored.
    for alg in ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]:
        key = "%s/given-%s" % (prefix, alg)
        want = expected_checksum(alg, data)
        c.put_object(Bucket=b, Key=key, Body=data, **{"Checksum" + alg: want})
        eq(c.get_object(Bucket=b, Key=key)["Body"].read(), data, key + " body")
        wrong = expected_checksum(alg, data + b"x")
        code = error_code(lambda: c.put_object(Bucket=b, Key=key + ".bad", Body=data, **{"Checksum" + alg: wrong}))
        eq(code[0], "BadDigest", key + " wrong checksum")
        eq(error_code(lambda: c.head_object(Bucket=b, Key=key + ".bad")), ("404", 404), key + " bad not stored")
    # Content-MD5 wrong: BadDigest.
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    code = error_code(lambda: c.put_object(Bucket=b, Key=prefix + "/md5bad", Body=data, ContentMD5=bad_md5))
    check(code[0] in ("BadDigest", "InvalidDigest"), "wrong Content-MD5: %r" % (code,))


def case_checksums(ctx):
    checksums(ctx, ctx.client(), "ck")


def case_tls(ctx):
    back_to_back_puts(ctx, ctx.tls_client(read_timeout=10, retries={"total_max_attempts": 1}), "tls")
    c = ctx.tls_client()
    round_trips(ctx, c, "tls")
    puts = ctx.headers_of("PutObject")
    modes = {h.get("x-amz-content-sha256") for h in puts}
    check("STREAMING-UNSIGNED-PAYLOAD-TRAILER" in modes, "https PutObject modes: %r" % modes)
    tr = [h for h in puts if h.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"][-1]
    check("x-amz-trailer" in tr and "aws-chunked" in tr.get("content-encoding", ""), "trailer headers: %r" % tr)
    # Content-Encoding set by the user survives next to aws-chunked.
    data = data_of(5000, 3)
    c.put_object(Bucket=ctx.bucket, Key="tls/gz", Body=data, ContentEncoding="gzip")
    h = c.head_object(Bucket=ctx.bucket, Key="tls/gz")
    eq(h.get("ContentEncoding"), "gzip", "user Content-Encoding with aws-chunked")


def case_tls_checksums(ctx):
    c = ctx.tls_client()
    checksums(ctx, c, "tlsck")
    trailers = {h.get("x-amz-trailer") for h in ctx.headers_of("PutObject") if "x-amz-trailer" in h}
    print("trailers seen over https: %s" % sorted(t for t in trailers if t))
    check(len(trailers) >= 3, "few trailer algorithms used: %r" % trailers)


def case_tls_multipart(ctx):
    managed_transfers(ctx, ctx.tls_client(), "tlsmp")
    parts = ctx.headers_of("UploadPart")
    modes = {h.get("x-amz-content-sha256") for h in parts}
    check("STREAMING-UNSIGNED-PAYLOAD-TRAILER" in modes, "https UploadPart modes: %r" % modes)


CASES = {
    "basic": case_basic,
    "listing": case_listing,
    "s3_semantics": case_s3_semantics,
    "presigned": case_presigned,
    "virtual_host": case_virtual_host,
    "multipart": case_multipart,
    "checksums": case_checksums,
    "tls": case_tls,
    "tls_checksums": case_tls_checksums,
    "tls_multipart": case_tls_multipart,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--tls-endpoint")
    p.add_argument("--ca")
    p.add_argument("--bucket", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("cases", nargs="+")
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    print("boto3 %s botocore %s awscrt %s" % (boto3.__version__, botocore.__version__, have_crt()))
    failed = 0
    for name in args.cases:
        ctx = Ctx(args)
        try:
            CASES[name](ctx)
            print("PASS %s" % name)
        except Exception as e:  # noqa: BLE001 - reported per case
            failed += 1
            print("FAIL %s: %s" % (name, e))
            traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
