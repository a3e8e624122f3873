"""Pipelines: jobs that compose the domain services (global importance of model versions...)."""
