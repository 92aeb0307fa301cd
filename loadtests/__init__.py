"""Locust load tests of the gateway (``make loadtest``): locustfile, profiles, SLO checker, runner."""
