"""The API on this machine: the API Lambda's resolver served over HTTP, behind the SigV4 check API Gateway does."""
