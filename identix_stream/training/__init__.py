"""Training code (face parsing); not imported by the service."""
