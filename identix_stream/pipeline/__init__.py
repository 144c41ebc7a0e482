"""Per-stream analysis sessions on top of the inference executor."""
