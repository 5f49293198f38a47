"""TrustGate: self-service, just-in-time access to IAM roles through a derived trust policy."""
