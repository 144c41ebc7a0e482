"""Pure logic: numpy + stdlib only (no asyncio, torch or I/O)."""
