"""The WebSocket edge: auth at upgrade, per-connection limits, ordered outboxes."""
