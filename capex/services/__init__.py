"""Use cases shared by the JSON API and the web client. Services flush; callers commit."""
