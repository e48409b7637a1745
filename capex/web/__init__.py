"""The server-rendered web client."""
