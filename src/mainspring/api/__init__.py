"""The control-plane REST API (FastAPI), OpenAPI at ``/docs``."""
