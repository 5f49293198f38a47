"""The adapters: AWS (and Slack) behind the ports, and `wiring`, which builds them (docs/architecture.md)."""
