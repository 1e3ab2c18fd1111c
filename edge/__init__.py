"""vigie's per-bus edge daemon: capture, detection, zones, tracking, alert policy and the alert bus."""
