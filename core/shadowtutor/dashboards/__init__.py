"""View-models of the pages: spend, budget, quality, readiness, overview, charts."""
