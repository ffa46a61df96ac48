"""Controllers: own one kind of job each, start and cancel its Worker, drop stale results."""
