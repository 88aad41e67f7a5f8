"""The package version, in a module of its own: modules that record it (manifests, the CLI's
``--version``) import it from here rather than from the root package, whose lazy names reach the
top layer (:mod:`coreselect.api`)."""

__version__ = "0.1.0"
