"""identix-stream: self-hostable real-time face analysis."""

__version__ = "0.1.0"
