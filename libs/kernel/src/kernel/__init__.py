"""Shared kernel of the Muye learning-credit bank services.

Holds what every service needs and no domain model: token verification, RFC 9457 problems,
structured logging with a request id, the settings base, cursor pagination, health endpoints
and database plumbing.
"""
