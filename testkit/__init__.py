"""Test support shared by every test suite: PostgreSQL provisioning and app clients."""
