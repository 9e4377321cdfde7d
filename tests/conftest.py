"""Shared pytest configuration."""

pytest_plugins = ["tests.fakegithub.fixtures"]
