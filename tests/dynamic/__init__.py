"""The dynamic-client suites: signed pin sets fetched, cached, refreshed and pushed."""
