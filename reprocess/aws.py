"""The reprocess app's own thin boto3 wrapper: the AWS *writes* toqdash makes.

Why not awslogs/client.py (house style §7 makes it the only boto3 module): that module is being
edited by another engineer while this app is built, and it is read-only by design (evidence
collection). This module copies its client configuration (standard retries, timeouts, endpoints
from `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`, which boto3 reads itself: we never pass
`endpoint_url`) and should be folded into it once it is free.

Writes are not retried by us beyond botocore's standard mode: SQS SendMessage has no idempotency
token, so a blind retry could send twice. StartExecution is idempotent by name and RedriveExecution
by client token; the service relies on both.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
from django.conf import settings


class ReprocessAwsError(Exception):
    """An AWS call failed; `code` is AWS's error code (or the botocore exception name)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"operation": self.operation, "code": self.code, "message": self.message}


_local = threading.local()


def _client(service: str) -> Any:
    """A cached client per (thread, service, credentials, region, endpoint env)."""
    cache: dict[tuple[str, ...], Any] = getattr(_local, "clients", None) or {}
    _local.clients = cache
    endpoints = tuple(sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL")))
    key = (service, os.environ.get("AWS_ACCESS_KEY_ID", ""), str(settings.AWS_DEFAULT_REGION), *endpoints)
    if key not in cache:
        config = botocore.config.Config(
            retries={"mode": settings.AWS_RETRY_MODE, "total_max_attempts": settings.AWS_MAX_ATTEMPTS},
            connect_timeout=settings.AWS_CONNECT_TIMEOUT,
            read_timeout=settings.AWS_READ_TIMEOUT,
            user_agent_extra="toqdash-reprocess",
        )
        session = boto3.session.Session(region_name=settings.AWS_DEFAULT_REGION)
        cache[key] = session.client(service, config=config)
    return cache[key]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _call(service: str, operation: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = getattr(_client(service), operation)(**kwargs)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise ReprocessAwsError(operation, str(error.get("Code", "")), str(error.get("Message", ""))) from exc
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        raise ReprocessAwsError(operation, type(exc).__name__, str(exc)) from exc
    return dict(_jsonable(response))


def sqs_send_message(*, queue_name: str, body: str, attributes: dict[str, dict[str, str]]) -> dict[str, Any]:
    queue_url = str(_call("sqs", "get_queue_url", QueueName=queue_name)["QueueUrl"])
    answer = _call("sqs", "send_message", QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes)
    answer["QueueUrl"] = queue_url
    return answer


def sfn_start_execution(*, state_machine_arn: str, name: str, input: str) -> dict[str, Any]:
    return _call("stepfunctions", "start_execution", stateMachineArn=state_machine_arn, name=name, input=input)


def sfn_describe_execution(execution_arn: str) -> dict[str, Any]:
    return _call("stepfunctions", "describe_execution", executionArn=execution_arn)


def sfn_redrive_execution(*, execution_arn: str, client_token: str) -> dict[str, Any]:
    return _call("stepfunctions", "redrive_execution", executionArn=execution_arn, clientToken=client_token)
