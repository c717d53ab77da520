"""Shared test fixtures."""

from httpserver import http_server  # noqa: F401  (the loopback file server fixture)
