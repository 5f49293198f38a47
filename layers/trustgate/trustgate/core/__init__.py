"""The pure core: rules and renderings, no AWS SDK and no I/O (docs/architecture.md, "Code layers")."""
