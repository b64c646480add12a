"""Object Lock through sealgate with boto3, as a backup tool sets it up:
a bucket with Object Lock and a default retention, objects written with
COMPLIANCE retention (single-part and managed multipart), a legal hold.

  boto3_object_lock.py --endpoint URL --bucket NAME [--store URL] CASE

CASE `locked` (a store that enforces Object Lock, given with --store; moto
takes any credentials): the gateway passes every lock through, and the
store, asked directly, refuses to delete the locked versions. CASE
`refused` (a store without Object Lock): every request for a lock is
refused with 501 NotImplemented and nothing is written unlocked.

Gateway credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
Prints "PASS CASE" when every check held; any failure raises.
"""

import argparse
import datetime
import os

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config


def client(endpoint, ak=None, sk=None):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ak or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=sk or os.environ["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def until(days):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return now + datetime.timedelta(days=days)


def error_of(f):
    try:
        f()
    except botocore.exceptions.ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    raise AssertionError("the request succeeded")


def locked(endpoint, bucket, store):
    s3 = client(endpoint)
    raw = client(store, "any", "any")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    cfg = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert cfg["ObjectLockEnabled"] == "Enabled", cfg
    assert cfg["Rule"]["DefaultRetention"]["Mode"] == "GOVERNANCE", cfg

    # A backup written with the bucket's default retention.
    s3.put_object(Bucket=bucket, Key="daily/1", Body=b"backup one" * 1000)
    h = s3.head_object(Bucket=bucket, Key="daily/1")
    assert h.get("ObjectLockMode") == "GOVERNANCE", h

    # One with its own COMPLIANCE retention.
    t = until(2)
    s3.put_object(
        Bucket=bucket,
        Key="daily/2",
        Body=b"backup two" * 1000,
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=t,
    )
    h = s3.head_object(Bucket=bucket, Key="daily/2")
    assert h["ObjectLockMode"] == "COMPLIANCE", h
    assert h["ObjectLockRetainUntilDate"] == t, (h["ObjectLockRetainUntilDate"], t)
    g = s3.get_object(Bucket=bucket, Key="daily/2")
    assert g["Body"].read() == b"backup two" * 1000
    assert g["ObjectLockMode"] == "COMPLIANCE", g

    # A large backup through boto3's managed multipart transfer, then locked
    # with COMPLIANCE: its manifest gets the same retention.
    body = os.urandom(12 * 1024 * 1024)
    path = f"/tmp/sealgate-lock-{os.getpid()}.bin"
    with open(path, "wb") as f:
        f.write(body)
    s3.upload_file(
        path,
        bucket,
        "weekly/1",
        Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024),
    )
    os.remove(path)
    s3.put_object_retention(
        Bucket=bucket,
        Key="weekly/1",
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": t},
    )
    assert s3.get_object(Bucket=bucket, Key="weekly/1")["Body"].read() == body
    manifests = [
        o["Key"]
        for o in raw.list_objects_v2(Bucket=bucket, Prefix=".sealgate/mp/").get("Contents", [])
    ]
    assert len(manifests) == 1, manifests
    mh = raw.head_object(Bucket=bucket, Key=manifests[0])
    assert mh["ObjectLockMode"] == "COMPLIANCE", mh
    assert mh["ObjectLockRetainUntilDate"] == t, mh

    # A legal hold, on and read back.
    s3.put_object_legal_hold(Bucket=bucket, Key="daily/1", LegalHold={"Status": "ON"})
    assert s3.get_object_legal_hold(Bucket=bucket, Key="daily/1")["LegalHold"]["Status"] == "ON"
    assert s3.head_object(Bucket=bucket, Key="daily/1")["ObjectLockLegalHoldStatus"] == "ON"

    # Whoever holds the store's keys cannot delete a locked version: not
    # the backups, not the manifest they need.
    for key in ["daily/1", "daily/2", "weekly/1", manifests[0]]:
        versions = raw.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
        for v in versions:
            if v["Key"] != key:
                continue
            status, code = error_of(
                lambda: raw.delete_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])
            )
            assert status == 403, (key, status, code)
    # A delete through sealgate only hides the backup (a delete marker).
    s3.delete_object(Bucket=bucket, Key="daily/2")
    versions = raw.list_object_versions(Bucket=bucket, Prefix="daily/2").get("Versions", [])
    assert len(versions) == 1, versions


def refused(endpoint, bucket, store):
    s3 = client(endpoint)
    status, code = error_of(
        lambda: s3.create_bucket(Bucket=bucket + "-lk", ObjectLockEnabledForBucket=True)
    )
    assert (status, code) == (501, "NotImplemented"), (status, code)
    s3.create_bucket(Bucket=bucket)
    status, code = error_of(
        lambda: s3.put_object(
            Bucket=bucket,
            Key="k",
            Body=b"x",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=until(1),
        )
    )
    assert (status, code) == (501, "NotImplemented"), (status, code)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    status, code = error_of(lambda: s3.get_object_lock_configuration(Bucket=bucket))
    assert (status, code) == (501, "NotImplemented"), (status, code)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--store")
    p.add_argument("case", choices=["locked", "refused"])
    a = p.parse_args()
    {"locked": locked, "refused": refused}[a.case](a.endpoint, a.bucket, a.store)
    print(f"PASS {a.case}")


if __name__ == "__main__":
    main()
