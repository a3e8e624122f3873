"""The model registry: governed, versioned model artifacts."""

from mainspring.registry.service import CHAMPION, LoadedVersion, Registry

__all__ = ["CHAMPION", "LoadedVersion", "Registry"]
