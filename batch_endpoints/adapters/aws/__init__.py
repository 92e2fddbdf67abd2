"""The cloud adapters: DynamoDB records, S3 blobs, Step Functions, AWS Batch and CloudWatch Logs."""
