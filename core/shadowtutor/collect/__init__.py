"""Collecting pairs: the request path (wrapper, proxy), the collector, jobs, breaker, replay."""
