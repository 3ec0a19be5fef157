"""The core suites: pins, host patterns, errors and the CLI's shared parts."""
