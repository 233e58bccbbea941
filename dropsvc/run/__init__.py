"""Running the service: the CLI, servers and workers, background work, replication, deploy, the demo."""
