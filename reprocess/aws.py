"""The AWS *writes* toqdash makes (SQS SendMessage, StartExecution, RedriveExecution).

Clients come from awslogs.client (the one module that builds boto3 clients: retries, timeouts,
endpoints from `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`, which boto3 reads itself); the
operations live here because awslogs only reads (evidence collection).

Writes are not retried by us beyond botocore's standard mode: SQS SendMessage has no idempotency
token, so a blind retry could send twice. StartExecution is idempotent by name and RedriveExecution
by client token; the service relies on both.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from awslogs.client import aws_client as _client
from awslogs.client import jsonable as _jsonable


class ReprocessAwsError(Exception):
    """An AWS call failed; `code` is AWS's error code (or the botocore exception name)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"operation": self.operation, "code": self.code, "message": self.message}


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
