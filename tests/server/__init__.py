"""The pin server's suites."""
