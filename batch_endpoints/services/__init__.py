"""The control-plane use cases by noun; batch_endpoints.service composes them into one service."""
