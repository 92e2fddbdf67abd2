"""Azure ML CLI v2 YAML files: their schemas, their loading into declarations, and the `--set` language."""
