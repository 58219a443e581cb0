"""Secrets and the cryptography built on them: field encryption, blind indexes, passwords."""
