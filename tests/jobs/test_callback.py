"""Pure decoding of TOQ's callback bodies and last_error (no database)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from jobs.callback import decode_callback, job_kind, split_last_error


def test_finalization_failure_error_object_is_decoded():
    body = json.dumps(
        {
            "jobId": 51,
            "listingIdentityId": "12",
            "status": "FINALIZATION_FAILED",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "error": {
                "Error": "wrapError",
                "Cause": '{"errorMessage":"failed to download 12/raw/photo/horizontal/x.jpg","errorType":"wrapError"}',
            },
        }
    )
    d = decode_callback(body)
    assert d.status == "FINALIZATION_FAILED"
    assert (d.error_code, d.error_type) == ("wrapError", "wrapError")
    assert d.error_message == "failed to download 12/raw/photo/horizontal/x.jpg"
    assert d.outputs_empty is True
    assert job_kind(provider="STEP_FUNCTIONS", external_id=None, payload=None, callback=d) == "finalization"


def test_partial_success_results_per_asset():
    body = json.dumps(
        {
            "status": "partial_success ",
            "failureReason": "DERIVATIVE_ERRORS_DETECTED",
            "error": {
                "code": "DERIVATIVE_ERRORS_DETECTED",
                "message": "one or more derivative branches reported errors",
            },
            "outputs": [
                {
                    "rawKey": "12/raw/photo/horizontal/a.jpg",
                    "processedKey": "12/processed/photo/horizontal/large/a.jpg",
                },
                {
                    "rawKey": "12/raw/photo/horizontal/b.heic",
                    "errorCode": "THUMBNAIL_PROCESSING_FAILED",
                    "errorMessage": "failed to decode image: image: unknown format",
                },
            ],
        }
    )
    d = decode_callback(body)
    assert d.status == "PARTIAL_SUCCESS"
    assert d.error_type == ""  # the message is plain text, not a Lambda error JSON
    assert [r["status"] for r in d.results] == ["PROCESSED", "FAILED"]
    assert d.outputs_empty is False


def test_last_error_fragments():
    assert split_last_error(None) == []
    assert split_last_error("reconciler marked failed after 30m0s without callback") == [
        "reconciler marked failed after 30m0s without callback"
    ]
    assert split_last_error("code=X | msg | reason | meta={}") == ["code=X", "msg", "reason", "meta={}"]


@given(
    st.one_of(
        st.text(max_size=2000),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=50),
            lambda children: (
                st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
            ),
            max_leaves=30,
        ).map(json.dumps),
    )
)
def test_decode_never_raises(body):
    d = decode_callback(body)
    assert isinstance(d.parse_error, str)
    job_kind(provider="STEP_FUNCTIONS", external_id=None, payload=None, callback=d)


@given(
    st.dictionaries(
        st.sampled_from(["status", "error", "outputs", "failureReason", "executionArn", "provider"]),
        st.one_of(
            st.none(),
            st.text(max_size=20),
            st.integers(),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(
                st.sampled_from(["code", "message", "Error", "Cause"]),
                st.one_of(st.none(), st.text(max_size=20), st.integers()),
            ),
        ),
    )
)
def test_decode_tolerates_wrong_types(obj):
    decode_callback(json.dumps(obj))
