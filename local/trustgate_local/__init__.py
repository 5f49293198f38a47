"""The local stack: TrustGate's whole workflow on one machine, with moto as the embedded AWS."""
