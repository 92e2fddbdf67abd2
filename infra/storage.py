"""The system's storage: one S3 bucket for models, code, job files and outputs, one for its access logs, one
DynamoDB table of records, and the deployer's data buckets (context data_buckets) that jobs may also read and write.
What may read and write which of them is granted here, by what the grantee is (a service step, a scoring container).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from batch_endpoints.adapters.aws.records import table_definition
from infra.layout import (
    RUNNER_READ_PREFIXES,
    RUNNER_WRITE_PREFIXES,
    SCRATCH_PREFIX,
    UPLOADS_PREFIX,
    job_data_access,
)

ATTRIBUTE_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}
# Access logs are for audits after the fact, not for ever.
ACCESS_LOG_DAYS = 365

# What adapters.aws.records calls. Documents are written with UpdateItem (never PutItem), counters with ADD.
RECORD_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
)
COUNTER_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
"""What a scoring container does with records: read its job, add to the job's counters."""
# What adapters.aws.blobs calls: multipart uploads and conditional writes need only PutObject (and Abort...),
# a folder listing or a bucket check needs ListBucket.
OBJECT_READ_ACTIONS = ("s3:GetObject",)
OBJECT_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")


class Storage(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        scratch_expiry: cdk.Duration,
        upload_expiry: cdk.Duration,
        versioned: bool = False,
        data_bucket_names: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.data_bucket_names = tuple(data_bucket_names)
        """Other buckets the deployer names, where inputs and outputs may also be."""
        self.data_buckets = [
            s3.Bucket.from_bucket_name(self, f"DataBucket{n}", name) for n, name in enumerate(self.data_bucket_names)
        ]
        secure: dict[str, Any] = {
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "enforce_ssl": True,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Models, outputs and audit logs outlive the stack: `cdk destroy` leaves both buckets.
            "removal_policy": cdk.RemovalPolicy.RETAIN,
        }
        self.log_bucket = s3.Bucket(
            self,
            "Logs",
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=cdk.Duration.days(ACCESS_LOG_DAYS))],
            **secure,
        )
        """Server access logs of the data bucket and the VPC's flow logs."""
        self.bucket = s3.Bucket(
            self,
            "Data",
            versioned=versioned,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="s3-access/",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-job-scratch", prefix=SCRATCH_PREFIX, expiration=scratch_expiry),
                # What the CLI and SDK staged for a job or a registration (a registration copies it elsewhere).
                s3.LifecycleRule(id="expire-uploads", prefix=UPLOADS_PREFIX, expiration=upload_expiry),
                # Multipart uploads of merged outputs that a crashed finalize left behind.
                s3.LifecycleRule(
                    id="abort-stale-uploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(2)
                ),
                *(
                    [s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=scratch_expiry)]
                    if versioned
                    else []
                ),
            ],
            **secure,
        )
        self.table = _record_table(self)
        self._index_names = [index["IndexName"] for index in table_definition("unused")["GlobalSecondaryIndexes"]]

    @property
    def backend_environment(self) -> dict[str, str]:
        """The variables of adapters.aws.backend that open its records and blobs: all a workflow step needs."""
        return {"BEP_BACKEND": "aws", "BEP_TABLE": self.table.table_name, "BEP_BUCKET": self.bucket.bucket_name}

    @property
    def data_access_environment(self) -> dict[str, str]:
        """Where jobs read and write: only where the system keeps inputs and outputs in its bucket, and the data
        buckets; see batch_endpoints/data_access.py (the guard against using the system's roles as a deputy)."""
        return job_data_access(self.bucket.bucket_name, self.data_bucket_names)

    def grant_every_object(self, grantee: iam.IGrantable) -> None:
        """Read and write every object of the system's bucket and the data buckets: a service step's (the API, the
        workflow's planning and merging), which the data access guard checks before it touches a job's data."""
        for bucket in (self.bucket, *self.data_buckets):
            grant_objects(bucket, grantee, writes=["*"])

    def grant_scoring(self, grantee: iam.IGrantable) -> None:
        """A scoring container's: read models, code and inputs, write part files and results under jobs/ and the
        scoring script's own files into the job's output folder (the finalize step writes the output file), and
        add to the job's counters. The data buckets are outputs too, as the API allows them: whose output folder
        a job writes is checked when it is invoked (batch_endpoints/data_access.py)."""
        grant_objects(
            self.bucket,
            grantee,
            reads=[f"{prefix}*" for prefix in RUNNER_READ_PREFIXES],
            writes=[f"{prefix}*" for prefix in RUNNER_WRITE_PREFIXES],
        )
        for bucket in self.data_buckets:
            grant_objects(bucket, grantee, writes=["*"])
        self.grant_records(grantee, COUNTER_ACTIONS)

    def grant_records(self, grantee: iam.IGrantable, actions: Sequence[str] = RECORD_ACTIONS) -> None:
        """`actions` on the table and, by name, its indexes (listings query them)."""
        table_arn = self.table.table_arn
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(actions),
            resource_arns=[table_arn, *(f"{table_arn}/index/{name}" for name in self._index_names)],
        )


def grant_objects(
    bucket: s3.IBucket, grantee: iam.IGrantable, *, reads: Sequence[str] = ("*",), writes: Sequence[str] = ()
) -> None:
    """List the bucket, read the objects whose keys match a pattern of `reads`, and write and delete those
    matching `writes` (patterns such as "jobs/*")."""
    iam.Grant.add_to_principal(grantee=grantee, actions=["s3:ListBucket"], resource_arns=[bucket.bucket_arn])
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(OBJECT_READ_ACTIONS),
        resource_arns=[bucket.arn_for_objects(keys) for keys in reads],
    )
    if writes:
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(OBJECT_WRITE_ACTIONS),
            resource_arns=[bucket.arn_for_objects(keys) for keys in writes],
        )


def _record_table(scope: Construct) -> dynamodb.Table:
    """The table exactly as records.table_definition() declares it (the schema the adapter and tests use)."""
    definition = table_definition("unused")
    types = {a["AttributeName"]: ATTRIBUTE_TYPES[a["AttributeType"]] for a in definition["AttributeDefinitions"]}

    def key(schema: list[dict[str, str]], role: str) -> dynamodb.Attribute | None:
        names = [k["AttributeName"] for k in schema if k["KeyType"] == role]
        return dynamodb.Attribute(name=names[0], type=types[names[0]]) if names else None

    if definition["BillingMode"] != "PAY_PER_REQUEST":
        raise ValueError("records.table_definition() changed its billing mode: update the stack's table")
    table = dynamodb.Table(
        scope,
        "Records",
        partition_key=key(definition["KeySchema"], "HASH"),
        sort_key=key(definition["KeySchema"], "RANGE"),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=True,
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    for index in definition["GlobalSecondaryIndexes"]:
        if index["Projection"]["ProjectionType"] != "KEYS_ONLY":
            raise ValueError(f"index {index['IndexName']} is not KEYS_ONLY: update the stack's table")
        table.add_global_secondary_index(
            index_name=index["IndexName"],
            partition_key=key(index["KeySchema"], "HASH"),
            sort_key=key(index["KeySchema"], "RANGE"),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
    return table
