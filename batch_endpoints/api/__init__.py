"""The HTTPS API: the wire schemas (`schemas`, what the SDK and CLI read too) and `app`, the resolver whose routes
the Lambda (lambdas/api/handler.py) and the local server (`bep serve`) both serve."""
