"""RWI call-control service: WebSocket gateway, event-sourced domain, event store."""

__version__ = "0.1.0"
