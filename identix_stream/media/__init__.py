"""Bytes to frames (images, videos while they upload) and frames to PNG/JPEG/MP4. No torch here."""
