"""The operations suites: monitor, alerts, freshness, suggestions."""
