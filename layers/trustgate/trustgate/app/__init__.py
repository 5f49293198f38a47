"""The use cases, written against `trustgate.core.ports` (docs/architecture.md, "Code layers")."""
