"""Batch endpoints: Azure-ML-style batch scoring on AWS, and on one machine."""
