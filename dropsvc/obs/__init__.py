"""Observing the service: Prometheus metrics and the access log."""
