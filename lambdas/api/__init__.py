"""The HTTPS API: `app` (the routes, importable anywhere) and `handler.lambda_handler` (its Lambda entry point)."""
