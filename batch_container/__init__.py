"""The scoring runner: what an AWS Batch job (or a local instance process) runs to score a job's shards.

Kept free of imports: every worker process imports this package before it has set up its environment.
"""
