"""The HTTP API: one Powertools Router per resource, assembled by `build_app`."""
