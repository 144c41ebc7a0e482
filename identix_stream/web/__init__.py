"""HTTP, WebSocket and WebRTC front end (Quart)."""
