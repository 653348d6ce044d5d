#!/usr/bin/env python3
"""Checks that an S3 endpoint started by scripts/s3-server.sh (or
scripts/moto-server.sh) behaves as the backup tool needs: SigV4 enforced,
conditional create (If-None-Match: *), ranged GET, paginated ListObjectsV2,
multipart upload, DELETE. Reads S3_ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION from the environment, as printed
by `start`:

    eval "$(scripts/s3-server.sh start "$DIR")" && export S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
    python3 scripts/s3-check.py

Needs boto3. Prints one line per check and exits non-zero if a required one
fails; lines marked "info" report behaviour that is not required.
S3_CHECK_NO_AUTH=1 reports the authentication checks as "info" only, for
servers that check no signatures (moto).
"""
import os
import sys
import urllib.error
import urllib.request
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = os.environ["S3_ENDPOINT"]
key = os.environ["AWS_ACCESS_KEY_ID"]
secret = os.environ["AWS_SECRET_ACCESS_KEY"]
region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

failures = 0


no_auth = os.environ.get("S3_CHECK_NO_AUTH") == "1"


def check(name, ok, detail="", required=True):
    global failures
    if not required:
        info(name, f"{'as required' if ok else 'NOT as required'}{', ' + str(detail) if detail else ''}")
        return
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + str(detail) if detail else ''}")
    if not ok:
        failures += 1


def info(name, detail):
    print(f"info {name}: {detail}")


def client(region_name=region, secret_key=secret, **cfg):
    # Newer botocore sends CRC checksums in aws-chunked trailers by default;
    # ask for them only where the API requires them, as older servers expect.
    cfg.setdefault("request_checksum_calculation", "when_required")
    cfg.setdefault("response_checksum_validation", "when_required")
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=key,
        aws_secret_access_key=secret_key, region_name=region_name,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                      retries={"max_attempts": 1}, **cfg))


def status(e):
    return e.response["ResponseMetadata"]["HTTPStatusCode"]


s3 = client()
bucket = "check-" + uuid.uuid4().hex[:12]

# Authentication.
try:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT"), timeout=5)
    check("unsigned CreateBucket is refused", False, "accepted", required=not no_auth)
except urllib.error.HTTPError as e:
    check("unsigned CreateBucket is refused", e.code == 403, e.code, required=not no_auth)
try:
    client(secret_key="wrong" + secret[5:]).list_buckets()
    check("wrong secret is refused", False, "accepted", required=not no_auth)
except ClientError as e:
    check("wrong secret is refused", status(e) == 403, e.response["Error"]["Code"], required=not no_auth)

s3.create_bucket(Bucket=bucket)
check("CreateBucket", True)
try:
    other = client(region_name="eu-west-1")
    other.list_objects_v2(Bucket=bucket)
    info("SigV4 with another region in the scope", "accepted")
except ClientError as e:
    info("SigV4 with another region in the scope", f"refused {e.response['Error']['Code']}")
try:
    s3.create_bucket(Bucket=bucket + "-lc", CreateBucketConfiguration={"LocationConstraint": region})
    info(f"CreateBucket with LocationConstraint={region}", "accepted")
    s3.delete_bucket(Bucket=bucket + "-lc")
except ClientError as e:
    info(f"CreateBucket with LocationConstraint={region}", f"refused {e.response['Error']['Code']}")

# PUT, conditional PUT.
body = b"0123456789abcdef"
r = s3.put_object(Bucket=bucket, Key="a/obj", Body=body)
etag = r["ETag"]
check("PutObject", True, etag)
try:
    s3.put_object(Bucket=bucket, Key="a/obj", Body=b"other", IfNoneMatch="*")
    check("PutObject If-None-Match: * on an existing key is refused", False, "accepted")
except ClientError as e:
    check("PutObject If-None-Match: * on an existing key is refused", status(e) == 412, status(e))
try:
    s3.put_object(Bucket=bucket, Key="a/new", Body=b"new", IfNoneMatch="*")
    check("PutObject If-None-Match: * on a new key", True)
except ClientError as e:
    check("PutObject If-None-Match: * on a new key", False, status(e))
check("object unchanged", s3.get_object(Bucket=bucket, Key="a/obj")["Body"].read() == body)
# Not required, reported: If-Match on PUT, conditional GETs.
try:
    s3.put_object(Bucket=bucket, Key="a/obj", Body=body, IfMatch='"00000000000000000000000000000000"')
    info("PutObject If-Match with a wrong ETag", "accepted (If-Match ignored on PUT)")
except ClientError as e:
    info("PutObject If-Match with a wrong ETag", f"refused {status(e)}")
for value, form in ((etag, "quoted"), (etag.strip('"'), "unquoted")):
    try:
        s3.put_object(Bucket=bucket, Key="a/obj", Body=body, IfMatch=value)
        info(f"PutObject If-Match with the current ETag, {form}", "accepted")
    except ClientError as e:
        info(f"PutObject If-Match with the current ETag, {form}", f"refused {status(e)}")
try:
    s3.get_object(Bucket=bucket, Key="a/obj", IfNoneMatch=etag)
    info("GetObject If-None-Match: <etag>", "200 (ignored)")
except ClientError as e:
    info("GetObject If-None-Match: <etag>", status(e))
try:
    s3.get_object(Bucket=bucket, Key="a/obj", IfMatch='"nope"')
    info("GetObject If-Match: <wrong etag>", "200 (ignored)")
except ClientError as e:
    info("GetObject If-Match: <wrong etag>", status(e))

# Ranged GET.
r = s3.get_object(Bucket=bucket, Key="a/obj", Range="bytes=2-5")
data = r["Body"].read()
check("ranged GET bytes=2-5", data == body[2:6] and r["ResponseMetadata"]["HTTPStatusCode"] == 206,
      f"{r['ResponseMetadata']['HTTPStatusCode']} {data!r} {r.get('ContentRange')}")
try:
    s3.get_object(Bucket=bucket, Key="a/obj", Range="bytes=100-200")
    info("GET with a range past the end", "200")
except ClientError as e:
    info("GET with a range past the end", status(e))

# ListObjectsV2 with pagination.
for i in range(5):
    s3.put_object(Bucket=bucket, Key=f"list/{i}", Body=b"x")
keys, pages, token = [], 0, None
while True:
    kw = {"Bucket": bucket, "Prefix": "list/", "MaxKeys": 2}
    if token:
        kw["ContinuationToken"] = token
    r = s3.list_objects_v2(**kw)
    pages += 1
    keys += [o["Key"] for o in r.get("Contents", [])]
    if not r.get("IsTruncated"):
        break
    token = r["NextContinuationToken"]
check("ListObjectsV2 max-keys=2 pagination", keys == [f"list/{i}" for i in range(5)] and pages == 3,
      f"{pages} pages {keys}")

# Multipart upload: two parts of 5 MiB and 1 byte.
part1, part2 = os.urandom(5 * 1024 * 1024), b"z"
mp = s3.create_multipart_upload(Bucket=bucket, Key="mp")
e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=mp["UploadId"], PartNumber=1, Body=part1)["ETag"]
e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=mp["UploadId"], PartNumber=2, Body=part2)["ETag"]
s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=mp["UploadId"], MultipartUpload={
    "Parts": [{"ETag": e1, "PartNumber": 1}, {"ETag": e2, "PartNumber": 2}]})
got = s3.get_object(Bucket=bucket, Key="mp")["Body"].read()
check("multipart upload", got == part1 + part2, f"{len(got)} bytes")
mp = s3.create_multipart_upload(Bucket=bucket, Key="mp")
e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=mp["UploadId"], PartNumber=1, Body=b"again")["ETag"]
try:
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=mp["UploadId"], IfNoneMatch="*",
                                 MultipartUpload={"Parts": [{"ETag": e1, "PartNumber": 1}]})
    info("CompleteMultipartUpload If-None-Match: * on an existing key", "accepted (object replaced)")
except ClientError as e:
    info("CompleteMultipartUpload If-None-Match: * on an existing key", f"refused {status(e)}")
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=mp["UploadId"])

# botocore's default checksums (a CRC header over http), reported only.
try:
    client(request_checksum_calculation="when_supported").put_object(Bucket=bucket, Key="ck", Body=b"abc")
    got = s3.get_object(Bucket=bucket, Key="ck")["Body"].read()
    info("PutObject with botocore's default checksums", f"accepted, reads back {got!r}")
except ClientError as e:
    info("PutObject with botocore's default checksums", f"refused {status(e)} {e.response['Error']['Code']}")

# DELETE.
for k in ["a/obj", "a/new", "mp", "ck"] + [f"list/{i}" for i in range(5)]:
    s3.delete_object(Bucket=bucket, Key=k)
try:
    s3.head_object(Bucket=bucket, Key="a/obj")
    check("DeleteObject", False, "still there")
except ClientError as e:
    check("DeleteObject", status(e) == 404, status(e))
s3.delete_bucket(Bucket=bucket)
check("DeleteBucket", True)

print(f"{failures} failed")
sys.exit(1 if failures else 0)
