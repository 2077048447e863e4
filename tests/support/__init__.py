"""Helpers shared by the tests: app sessions, browser runs, export fixtures, gate simulation."""
