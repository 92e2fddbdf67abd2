"""The API Lambda: `handler.lambda_handler`, the entry point over the resolver in batch_endpoints.api.app."""
