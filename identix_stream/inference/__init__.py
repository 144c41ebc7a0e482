"""Models and the batching executor (the only layer that imports torch)."""
