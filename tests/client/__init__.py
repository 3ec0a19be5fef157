"""The client suites: pinned stacks against real TLS servers on 127.0.0.1."""
