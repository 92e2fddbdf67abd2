"""Thin Lambda entry points: `api` (the HTTPS API) and `workflow` (the state machine's steps), each calling the core."""
