"""moto's server on loopback, set up for drctl's contract tests, with SigV4 enforced.

Usage: moto_server.py FACTS_FILE SEEN_TOKENS_FILE

Set up before authentication is switched on: an IAM role `drctl-backup` (web identity trust,
an inline policy allowing S3 and Route53), an IAM user `observer` with its own keys for the
tests' independent checks, buckets `plain` and `locked` (Object Lock enabled, so versioned),
and a Route53 hosted zone `example.test.`. Then every request must be signed by a known
identity, as on AWS.

Two patches. One: moto signs STS AssumeRoleWithWebIdentity like any other call, while AWS takes it
unsigned (the token is the proof). The patch lets that one action through unsigned and
appends the WebIdentityToken it received to SEEN_TOKENS_FILE, so a test can prove which token
file was read. The observer's requests are let through unchecked (moto's verifier hashes a
body into botocore's GETs that have none); only drctl's requests are under test. The facts (port, role ARN, observer keys, zone id) go to FACTS_FILE as JSON
once the server is ready.
"""

import json
import os
import sys
import threading
from urllib.parse import parse_qsl, quote

import boto3
from moto import settings
from moto.core import authorization
from moto.iam import access_control
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

facts_file, seen_file = sys.argv[1], sys.argv[2]

OBSERVER = None
_original = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action


def _authenticate(self, iam_request_cls, resource="*"):
    if OBSERVER and f"Credential={OBSERVER}/" in (self.headers.get("Authorization") or ""):
        return  # the tests' observer: moto's verifier mishandles botocore's unsigned-body GETs
    if getattr(self, "querystring", None) is not None:
        action = self.querystring.get("Action")
        action = action[0] if isinstance(action, list) else action
        if action == "AssumeRoleWithWebIdentity":
            token = self.querystring.get("WebIdentityToken")
            token = token[0] if isinstance(token, list) else token
            with open(seen_file, "a") as f:
                f.write(f"{token}\n")
            return
    return _original(self, iam_request_cls, resource)


authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate

# Two: moto verifies a signature over the query string exactly as sent, while AWS first
# decodes and re-encodes each name and value (SigV4's canonical query string). Clients that
# send `prefix=a/b/` unencoded, as OpenDAL does and AWS accepts, would otherwise be refused.
_create = access_control.IAMRequestBase._create_aws_request


def _create_canonical(self):
    request = _create(self)
    path, _, query = request.url.partition("?")
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        request.url = path + "?" + "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs
        )
    return request


access_control.IAMRequestBase._create_aws_request = _create_canonical

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
url = f"http://{host}:{port}"


def client(service):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )


iam = client("iam")
allow_all = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "route53:*"], "Resource": "*"}],
    }
)
trust = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.test"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
)
role = iam.create_role(RoleName="drctl-backup", AssumeRolePolicyDocument=trust)["Role"]
iam.put_role_policy(RoleName="drctl-backup", PolicyName="backups", PolicyDocument=allow_all)
iam.create_user(UserName="observer")
iam.put_user_policy(UserName="observer", PolicyName="all", PolicyDocument=allow_all)
key = iam.create_access_key(UserName="observer")["AccessKey"]
OBSERVER = key["AccessKeyId"]

s3 = client("s3")
s3.create_bucket(Bucket="plain")
s3.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
zone = client("route53").create_hosted_zone(Name="example.test.", CallerReference="drctl-tests")
zone_id = zone["HostedZone"]["Id"].split("/")[-1]

# From here on, every request must be signed by a known identity (what moto's
# /moto-api/reset-auth does, in-process).
settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
authorization.ActionAuthenticatorMixin.request_count = 0

tmp = facts_file + ".tmp"
with open(tmp, "w") as f:
    json.dump(
        {
            "port": port,
            "role_arn": role["Arn"],
            "observer_key_id": key["AccessKeyId"],
            "observer_secret": key["SecretAccessKey"],
            "zone_id": zone_id,
        },
        f,
    )
os.rename(tmp, facts_file)
threading.Event().wait()
