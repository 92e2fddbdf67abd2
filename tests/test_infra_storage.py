"""infra/storage.py: the data bucket and its log bucket, and the record table exactly as the adapter declares it."""

from __future__ import annotations

from typing import Any

import pytest

from batch_endpoints.adapters.aws.records import table_definition
from tests.infra_fixtures import OPTIONS, Synthesis, synthesize


@pytest.fixture(scope="module")
def synthesis() -> Synthesis:
    return synthesize()


def test_every_bucket_is_encrypted_private_and_tls_only(synthesis: Synthesis) -> None:
    buckets = synthesis.resources("AWS::S3::Bucket")
    assert len(buckets) == 2
    policies = {p["Bucket"]["Ref"]: p["PolicyDocument"] for p in synthesis.resources("AWS::S3::BucketPolicy").values()}
    for logical_id, bucket in buckets.items():
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
        assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        denies = [s for s in policies[logical_id]["Statement"] if s["Effect"] == "Deny"]
        assert any(
            s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and s["Action"] == "s3:*" for s in denies
        )


def test_the_data_bucket_logs_access_and_expires_job_scratch(synthesis: Synthesis) -> None:
    data = _data_bucket(synthesis)
    assert data["LoggingConfiguration"]["LogFilePrefix"] == "s3-access/"
    rules = {rule["Id"]: rule for rule in data["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-job-scratch"] == {
        "Id": "expire-job-scratch",
        "Prefix": "jobs/",
        "ExpirationInDays": 30,
        "Status": "Enabled",
    }
    assert rules["abort-stale-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    assert "VersioningConfiguration" not in data


def test_staged_uploads_expire_after_a_week_or_the_days_a_deployer_sets(synthesis: Synthesis) -> None:
    expected = {"Id": "expire-uploads", "Prefix": "uploads/", "ExpirationInDays": 7, "Status": "Enabled"}
    rules = {rule["Id"]: rule for rule in _data_bucket(synthesis)["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-uploads"] == expected
    rules = {
        rule["Id"]: rule for rule in _data_bucket(synthesize(upload_expiry_days="2"))["LifecycleConfiguration"]["Rules"]
    }
    assert rules["expire-uploads"] == {**expected, "ExpirationInDays": 2}


def test_versioning_and_the_scratch_expiry_come_from_context() -> None:
    data = _data_bucket(synthesize(**OPTIONS))
    assert data["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = {rule["Id"]: rule for rule in data["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-job-scratch"]["ExpirationInDays"] == 7
    assert rules["expire-old-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}


def test_the_table_is_the_adapters_table_definition(synthesis: Synthesis) -> None:
    (table,) = synthesis.resources("AWS::DynamoDB::Table").values()
    expected = table_definition("unused")
    assert table["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == expected["KeySchema"]
    assert _by_name(table["AttributeDefinitions"], "AttributeName") == _by_name(
        expected["AttributeDefinitions"], "AttributeName"
    )
    assert _by_name(table["GlobalSecondaryIndexes"], "IndexName") == _by_name(
        expected["GlobalSecondaryIndexes"], "IndexName"
    )


def test_the_table_has_point_in_time_recovery_and_deletion_protection(synthesis: Synthesis) -> None:
    (table,) = synthesis.resources("AWS::DynamoDB::Table").values()
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionProtectionEnabled"] is True
    (retained,) = (r for r in synthesis.template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table")
    assert retained["DeletionPolicy"] == "Retain"


def _data_bucket(synthesis: Synthesis) -> dict[str, Any]:
    (data,) = (b for b in synthesis.resources("AWS::S3::Bucket").values() if "LoggingConfiguration" in b)
    return data


def _by_name(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}
