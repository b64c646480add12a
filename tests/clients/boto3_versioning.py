"""Versioning through sealgate with boto3, as a backup that must survive a
compromised client uses it.

  boto3_versioning.py --endpoint URL --bucket NAME CASE

CASE `versions` (a store that keeps versions, moto): enable versioning,
write single-part and multipart versions, read each back by version id
(bytes, ETag, size), list versions with exact sizes and ETags, delete
(a delete marker), read the old versions, delete one version for good,
copy from a version, DeleteObjects with version ids.

CASE `refused` (a store without versioning, Garage): enabling versioning,
reading or deleting a version and listing versions are refused, and the
object is neither served nor deleted in a version's place.

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Prints
"PASS CASE" when every check held; any failure raises.
"""

import argparse
import hashlib
import io
import os

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def data(n, seed):
    out = bytearray()
    x = seed
    while len(out) < n:
        x = hashlib.sha256(x.to_bytes(8, "little") + bytes(out[-32:])).digest()
        out += x
        x = int.from_bytes(x[:8], "little")
    return bytes(out[:n])


def md5(b):
    return hashlib.md5(b).hexdigest()


def code_of(f):
    try:
        f()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("succeeded, but must fail")


def get(s3, bucket, key, version=None):
    kw = {"VersionId": version} if version else {}
    r = s3.get_object(Bucket=bucket, Key=key, **kw)
    return r["Body"].read(), r["ETag"].strip('"'), r["ContentLength"], r.get("VersionId")


def versions_case(s3, bucket):
    s3.create_bucket(Bucket=bucket)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    d1, d2, d3 = data(1000, 1), data(11 * MIB + 5, 2), data(70000, 3)
    r1 = s3.put_object(Bucket=bucket, Key="backup", Body=d1)
    v1 = r1["VersionId"]
    assert r1["ETag"].strip('"') == md5(d1)
    # A managed multipart upload (three parts).
    s3.upload_fileobj(
        io.BytesIO(d2),
        bucket,
        "backup",
        Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB),
    )
    h2 = s3.head_object(Bucket=bucket, Key="backup")
    v2, e2 = h2["VersionId"], h2["ETag"].strip('"')
    assert e2.endswith("-3"), e2
    r3 = s3.put_object(Bucket=bucket, Key="backup", Body=d3)
    v3 = r3["VersionId"]
    assert len({v1, v2, v3}) == 3

    want = {v1: (d1, md5(d1)), v2: (d2, e2), v3: (d3, md5(d3))}
    for v, (d, e) in want.items():
        body, etag, n, vid = get(s3, bucket, "backup", v)
        assert body == d, f"version {v}: bytes"
        assert (etag, n, vid) == (e, len(d), v), (etag, n, vid)
        h = s3.head_object(Bucket=bucket, Key="backup", VersionId=v)
        assert (h["ETag"].strip('"'), h["ContentLength"]) == (e, len(d))
        r = s3.get_object(Bucket=bucket, Key="backup", VersionId=v, Range="bytes=100-199")
        assert r["Body"].read() == d[100:200], f"range of {v}"

    lv = s3.list_object_versions(Bucket=bucket)
    listed = {x["VersionId"]: (x["Size"], x["ETag"].strip('"'), x["IsLatest"]) for x in lv["Versions"]}
    assert listed == {
        v1: (len(d1), md5(d1), False),
        v2: (len(d2), e2, False),
        v3: (len(d3), md5(d3), True),
    }, listed
    assert not any(x["Key"].startswith(".sealgate/") for x in lv["Versions"])

    # A compromised client deletes the backup: a delete marker; every
    # version, the multipart one included, still reads.
    d = s3.delete_object(Bucket=bucket, Key="backup")
    assert d["DeleteMarker"] is True
    assert code_of(lambda: s3.get_object(Bucket=bucket, Key="backup")) == ("NoSuchKey", 404)
    for v, (body, _) in want.items():
        assert get(s3, bucket, "backup", v)[0] == body, f"after the delete, {v}"
    lv = s3.list_object_versions(Bucket=bucket)
    assert [m["VersionId"] for m in lv["DeleteMarkers"]] == [d["VersionId"]]

    # Restore by copying an old version over the marker.
    c = s3.copy_object(
        Bucket=bucket,
        Key="backup",
        CopySource={"Bucket": bucket, "Key": "backup", "VersionId": v2},
    )
    assert c["CopySourceVersionId"] == v2
    assert c["CopyObjectResult"]["ETag"].strip('"') == e2
    assert get(s3, bucket, "backup")[0] == d2

    # One version deleted for good; DeleteObjects with version ids.
    s3.delete_object(Bucket=bucket, Key="backup", VersionId=v1)
    assert code_of(lambda: s3.get_object(Bucket=bucket, Key="backup", VersionId=v1))[1] in (400, 404)
    r = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "backup", "VersionId": v3}, {"Key": "backup", "VersionId": d["VersionId"]}]},
    )
    assert not r.get("Errors"), r.get("Errors")
    assert sorted(x["VersionId"] for x in r["Deleted"]) == sorted([v3, d["VersionId"]])
    lv = s3.list_object_versions(Bucket=bucket)
    left = sorted(x["VersionId"] for x in lv["Versions"])
    assert len(left) == 2 and v2 in left, left
    assert get(s3, bucket, "backup", v2)[0] == d2
    print("PASS versions")


def refused_case(s3, bucket):
    s3.create_bucket(Bucket=bucket)
    d = data(5000, 9)
    s3.put_object(Bucket=bucket, Key="backup", Body=d)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    code, status = code_of(
        lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    )
    assert status == 501, (code, status)
    assert code_of(lambda: s3.get_object(Bucket=bucket, Key="backup", VersionId="3sL4kqtJlcpXroDTDmJ")) == (
        "NotImplemented",
        501,
    )
    assert code_of(lambda: s3.delete_object(Bucket=bucket, Key="backup", VersionId="3sL4kqtJlcpXroDTDmJ")) == (
        "InvalidArgument",
        400,
    )
    assert get(s3, bucket, "backup")[0] == d, "not deleted in the version's place"
    assert code_of(lambda: s3.list_object_versions(Bucket=bucket))[1] == 501
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "backup", "VersionId": "3sL4kqtJlcpXroDTDmJ"}]})
    assert [e["Code"] for e in r.get("Errors", [])] == ["InvalidArgument"], r
    assert get(s3, bucket, "backup")[0] == d, "not deleted by DeleteObjects either"
    print("PASS refused")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("case", choices=["versions", "refused"])
    a = p.parse_args()
    s3 = client(a.endpoint)
    {"versions": versions_case, "refused": refused_case}[a.case](s3, a.bucket)


if __name__ == "__main__":
    main()
