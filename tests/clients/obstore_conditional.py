"""Conditional puts through sealgate with obstore, the Python binding of
Rust's object_store (what Delta Lake and Iceberg commits use): put with
mode "create" (If-None-Match: *) and with an UpdateVersion (If-Match).

  obstore_conditional.py --endpoint URL --bucket NAME CASE

Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Prints
"PASS CASE" when every check held; any failure raises.
"""

import argparse
import os
import threading
import time

import boto3
import obstore
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import S3Store


def store(endpoint, bucket, retries=None):
    kwargs = {}
    if retries is not None:
        kwargs["retry_config"] = {"max_retries": retries}
    return S3Store(
        bucket,
        endpoint=endpoint,
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region="us-east-1",
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
        **kwargs,
    )


def make_bucket(endpoint, bucket):
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=bucket)


def create_race(endpoint, bucket):
    """Two writers create one key at the same moment, five times over:
    exactly one wins each time, the other is told the object exists, and
    the object is the winner's."""
    st = store(endpoint, bucket)
    for round_ in range(5):
        path = f"locks/lock-{round_}"
        contents = [f"writer {i} of round {round_}".encode() * 100 for i in range(2)]
        results = [None, None]
        barrier = threading.Barrier(2)

        def write(i):
            barrier.wait()
            try:
                obstore.put(st, path, contents[i], mode="create")
                results[i] = "won"
            except AlreadyExistsError:
                results[i] = "exists"
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = f"error: {type(e).__name__}: {e}"

        threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["exists", "won"], (round_, results)
        winner = results.index("won")
        got = obstore.get(st, path).bytes().to_bytes()
        assert got == contents[winner], (round_, "the object is not the winner's")


def compare_and_swap(endpoint, bucket):
    """A put conditioned on the version read succeeds once; the same
    condition again (a stale version) fails and writes nothing."""
    st = store(endpoint, bucket)
    path = "state/table.json"
    first = obstore.put(st, path, b'{"version": 1}', mode="create")
    etag = first["e_tag"]
    assert etag, first
    head = obstore.head(st, path)
    assert head["e_tag"] == etag, (head, first)
    second = obstore.put(st, path, b'{"version": 2}', mode={"e_tag": etag})
    try:
        obstore.put(st, path, b'{"version": 3}', mode={"e_tag": etag})
        raise AssertionError("a stale compare-and-swap succeeded")
    except PreconditionError:
        pass
    got = obstore.get(st, path).bytes().to_bytes()
    assert got == b'{"version": 2}', got
    third = obstore.put(st, path, b'{"version": 3}', mode={"e_tag": second["e_tag"]})
    assert third["e_tag"] != second["e_tag"]


def refused(endpoint, bucket):
    """Over a store that does not enforce conditions: a create over an
    object is refused (501, naming the config key), fast, and the object
    stays as it was. (object_store retries 5xx; retries are off here to
    time one answer.)"""
    st = store(endpoint, bucket, retries=0)
    path = "locks/lock"
    obstore.put(st, path, b"the first")
    started = time.monotonic()
    try:
        obstore.put(st, path, b"the second", mode="create")
        raise AssertionError("a create over an object succeeded")
    except AlreadyExistsError as e:
        raise AssertionError(f"claimed an atomic check the store cannot make: {e}") from e
    except Exception as e:  # noqa: BLE001 - the refusal, checked below
        text = str(e)
        assert "NotImplemented" in text or "501" in text, text
        assert "store.conditional_writes" in text, text
    took = time.monotonic() - started
    assert took < 5, f"the refusal took {took:.1f} s"
    got = obstore.get(st, path).bytes().to_bytes()
    assert got == b"the first", got


CASES = {
    "create_race": create_race,
    "compare_and_swap": compare_and_swap,
    "refused": refused,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("case", choices=sorted(CASES))
    a = p.parse_args()
    make_bucket(a.endpoint, a.bucket)
    CASES[a.case](a.endpoint, a.bucket)
    print(f"PASS {a.case}")


if __name__ == "__main__":
    main()
