"""Property-based fuzzing of the API (schemathesis) through the local stack's SigV4 gateway; see docs/testing.md."""
