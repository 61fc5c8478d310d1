"""Verifiable credentials (Open Badges 3.0, CLR 2.0 as VC-JWT), revocation and verification."""
