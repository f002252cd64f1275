"""The only module that imports boto3 (house style §7).

Every function returns plain JSON-compatible dicts shaped exactly like the AWS CLI prints them
(`--output json`: datetimes as ISO 8601 strings, no `ResponseMetadata`), so the collector and the
offline importer (`import_aws`) feed the very same parsers.

Endpoints: boto3 itself honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` (e.g.
`AWS_ENDPOINT_URL_SFN`, `AWS_ENDPOINT_URL_MEDIACONVERT`); we never pass `endpoint_url`, so that
mechanism keeps working. Retries: botocore's "standard" mode retries throttling, 5xx and transient
connection errors with exponential backoff and jitter; what is still failing afterwards is mapped
to `AwsTransientError`, which Celery tasks retry with their own backoff.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
from django.conf import settings

# Error codes AWS uses for "this thing does not exist" across the services we call.
_NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "ExecutionDoesNotExist",
        "StateMachineDoesNotExist",
        "NoSuchKey",
        "NoSuchBucket",
        "NotFound",
        "404",
        "NotFoundException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)
_ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "ForbiddenException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "403",
    }
)
_THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "RequestThrottled",
        "RequestThrottledException",
    }
)


class AwsError(Exception):
    """An AWS call failed; `code` is AWS's error code, `operation` the API name."""

    reason = "error"

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message


class AwsNotFoundError(AwsError):
    reason = "not_found"


class AwsAccessDeniedError(AwsError):
    reason = "access_denied"


class AwsTransientError(AwsError):
    """Throttling, 5xx or connection trouble that survived botocore's own retries."""

    reason = "transient"


_local = threading.local()


def _endpoint_signature(service: str) -> tuple[str, ...]:
    # Every AWS_ENDPOINT_URL* variable is part of the key: the per-service names (SFN,
    # CLOUDWATCH_LOGS, MEDIACONVERT, ...) are boto3's service ids, not the client names.
    endpoints = tuple(sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL")))
    retries = "/".join(
        str(v)
        for v in (
            settings.AWS_RETRY_MODE,
            settings.AWS_MAX_ATTEMPTS,
            settings.AWS_CONNECT_TIMEOUT,
            settings.AWS_READ_TIMEOUT,
        )
    )
    return (service, os.environ.get("AWS_ACCESS_KEY_ID", ""), str(settings.AWS_DEFAULT_REGION), retries, *endpoints)


def _client(service: str) -> Any:
    """A cached boto3 client per (thread, service, endpoint env): clients are costly to build."""
    cache: dict[tuple[str, ...], Any] = getattr(_local, "clients", None) or {}
    _local.clients = cache
    key = _endpoint_signature(service)
    if key not in cache:
        config = botocore.config.Config(
            retries={"mode": settings.AWS_RETRY_MODE, "total_max_attempts": settings.AWS_MAX_ATTEMPTS},
            connect_timeout=settings.AWS_CONNECT_TIMEOUT,
            read_timeout=settings.AWS_READ_TIMEOUT,
            user_agent_extra="toqdash-awslogs",
            # S3 presigned URLs default to the legacy SigV2 query auth, which S3 refuses for SSE-KMS
            # objects (the media bucket is SSE-KMS): sign with SigV4.
            signature_version="s3v4" if service == "s3" else None,
        )
        session = boto3.session.Session(region_name=settings.AWS_DEFAULT_REGION)
        cache[key] = session.client(service, config=config)
    return cache[key]


def aws_client(service: str) -> Any:
    """The shared, cached boto3 client of a service, for the other apps' AWS calls (reprocess)."""
    return _client(service)


def credentials_available() -> bool:
    """Whether the standard AWS credential chain yields anything (env, profile, role...)."""
    return boto3.session.Session().get_credentials() is not None


def jsonable(value: Any) -> Any:
    """Response → what the AWS CLI would print (datetimes as isoformat, bytes decoded)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def _call(service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
    client = _client(service)
    try:
        response = getattr(client, operation)(**kwargs)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        message = str(error.get("Message", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _NOT_FOUND_CODES or (status == 404 and code not in _ACCESS_DENIED_CODES):
            raise AwsNotFoundError(operation, code, message) from exc
        if code in _ACCESS_DENIED_CODES or status == 403:
            raise AwsAccessDeniedError(operation, code, message) from exc
        if code in _THROTTLING_CODES or status >= 500 or status == 429:
            raise AwsTransientError(operation, code, message) from exc
        raise AwsError(operation, code, message) from exc
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.ConnectionClosedError,
    ) as exc:
        raise AwsTransientError(operation, type(exc).__name__, str(exc)) from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise AwsAccessDeniedError(operation, "NoCredentials", str(exc)) from exc
    return jsonable(response)


def _page_size() -> int:
    return int(settings.AWS_PAGE_SIZE)


# --- Step Functions ---------------------------------------------------------------------------


def sfn_list_state_machines() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"maxResults": _page_size()}
        if token:
            kwargs["nextToken"] = token
        page = _call("stepfunctions", "list_state_machines", **kwargs)
        out.extend(page.get("stateMachines", []))
        token = page.get("nextToken")
        if not token:
            return out


def sfn_list_executions(state_machine_arn: str) -> Iterator[dict[str, Any]]:
    """Executions newest first (AWS's order), lazily, so callers can stop at a time bound."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "maxResults": _page_size()}
        if token:
            kwargs["nextToken"] = token
        page = _call("stepfunctions", "list_executions", **kwargs)
        yield from page.get("executions", [])
        token = page.get("nextToken")
        if not token:
            return


def sfn_describe_execution(execution_arn: str) -> dict[str, Any]:
    return _call("stepfunctions", "describe_execution", executionArn=execution_arn)


def sfn_get_execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """The whole history, every page (AWS keeps at most 25,000 events)."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000, "includeExecutionData": True}
        if token:
            kwargs["nextToken"] = token
        page = _call("stepfunctions", "get_execution_history", **kwargs)
        events.extend(page.get("events", []))
        token = page.get("nextToken")
        if not token:
            return events


def sfn_describe_state_machine_for_execution(execution_arn: str) -> dict[str, Any]:
    return _call("stepfunctions", "describe_state_machine_for_execution", executionArn=execution_arn)


# --- CloudWatch Logs ---------------------------------------------------------------------------


def logs_filter_log_events(log_group: str, *, start_ms: int, end_ms: int) -> Iterator[list[dict[str, Any]]]:
    """Pages of events of a log group in [start_ms, end_ms]; raises AwsNotFoundError if the group is absent."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "logGroupName": log_group,
            "startTime": start_ms,
            "endTime": end_ms,
            "limit": _page_size(),
        }
        if token:
            kwargs["nextToken"] = token
        page = _call("logs", "filter_log_events", **kwargs)
        yield page.get("events", [])
        new_token = page.get("nextToken")
        # An unchanged token means the end of the data (CloudWatch returns the same token when caught up).
        if not new_token or new_token == token:
            return
        token = new_token


# --- S3 ------------------------------------------------------------------------------------------


def s3_list_objects(bucket: str, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": _page_size()}
        if token:
            kwargs["ContinuationToken"] = token
        page = _call("s3", "list_objects_v2", **kwargs)
        out.extend(page.get("Contents", []))
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return out


def s3_head_object(bucket: str, key: str) -> dict[str, Any]:
    return _call("s3", "head_object", Bucket=bucket, Key=key)


def s3_presigned_get_url(bucket: str, key: str, *, expires_in: int) -> str:
    """A GET URL for one object, valid `expires_in` seconds (SigV4, signed locally: no AWS call).
    The key is percent-encoded by botocore. "" when no credentials are available to sign with."""
    try:
        url = _client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(expires_in)
        )
    except botocore.exceptions.NoCredentialsError:
        return ""
    return str(url)


_presign_origins: dict[tuple[str, ...], str] = {}


def s3_presigned_origin(bucket: str) -> str:
    """`scheme://host[:port]` that presigned URLs of `bucket` point at (the bucket's virtual host on
    AWS, AWS_ENDPOINT_URL[_S3] elsewhere), for the Content-Security-Policy's img-src. "" when
    nothing can be signed. Cached per endpoint configuration (a URL is signed once to find it)."""
    key = (bucket, *_endpoint_signature("s3"))
    if key not in _presign_origins:
        url = s3_presigned_get_url(bucket, "origin-probe", expires_in=60)
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""
        if not origin:
            return ""  # not cached: credentials may appear later (an instance role's first refresh)
        _presign_origins[key] = origin
    return _presign_origins[key]


# --- MediaConvert / Lambda / SQS ----------------------------------------------------------------


def mediaconvert_get_job(job_id: str) -> dict[str, Any]:
    return _call("mediaconvert", "get_job", Id=job_id)


def lambda_get_function_configuration(function_name: str) -> dict[str, Any]:
    return _call("lambda", "get_function_configuration", FunctionName=function_name)


def sqs_get_queue_url(queue_name: str) -> str:
    return str(_call("sqs", "get_queue_url", QueueName=queue_name)["QueueUrl"])


def sqs_queue_attributes(queue_url: str) -> dict[str, str]:
    response = _call(
        "sqs",
        "get_queue_attributes",
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )
    return dict(response.get("Attributes", {}))


def sqs_peek_messages(queue_url: str, *, max_messages: int = 10) -> list[dict[str, Any]]:
    """Read messages without consuming them: VisibilityTimeout=0, and we never delete."""
    response = _call(
        "sqs",
        "receive_message",
        QueueUrl=queue_url,
        MaxNumberOfMessages=max(1, min(max_messages, 10)),
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(response.get("Messages", []))
