"""Snapshots that belong to no single job: Lambda configurations (FM-39 drift) and the queues."""

from __future__ import annotations

from django.conf import settings

from awslogs import client
from awslogs.services import store
from awslogs.services.collect_logs import lambda_function_names
from awslogs.services.context import Missing


def lambda_configs_snapshot() -> tuple[int, list[Missing]]:
    """GetFunctionConfiguration for every TOQ Lambda; a new snapshot only when the config changed."""
    new, missing = 0, []
    for name in lambda_function_names():
        try:
            data = client.lambda_get_function_configuration(name)
        except client.AwsError as exc:
            missing.append(Missing("lambda configuration", name, exc.reason, str(exc)))
            continue
        _, created = store.lambda_config_store(data=data)
        new += int(created)
    return new, missing


def queues_snapshot(*, peek_batches: int = 5) -> tuple[int, list[Missing]]:
    """Depth of the main queue and DLQ; DLQ messages peeked with VisibilityTimeout=0 (never deleted)."""
    missing: list[Missing] = []
    new_messages = 0
    for queue_name in (settings.TOQ_MAIN_QUEUE, settings.TOQ_DLQ):
        try:
            url = client.sqs_get_queue_url(queue_name)
            attrs = client.sqs_queue_attributes(url)
        except client.AwsError as exc:
            missing.append(Missing("queue", queue_name, exc.reason, str(exc)))
            store.queue_snapshot_record(queue_name=queue_name, values={"error": str(exc)[:512]})
            continue
        store.queue_snapshot_record(
            queue_name=queue_name,
            values={
                "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
            },
        )
        if queue_name == settings.TOQ_DLQ:
            for _ in range(peek_batches):
                messages = client.sqs_peek_messages(url, max_messages=10)
                added = store.dlq_messages_store(queue_name=queue_name, messages=messages)
                new_messages += added
                if not messages or not added:
                    break
    return new_messages, missing
