"""Root conftest: the PostgreSQL server and shared fixtures for every suite."""

pytest_plugins = ["testkit.fixtures"]
