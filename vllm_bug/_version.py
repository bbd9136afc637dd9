"""The package's version, in a module of its own: the schema layer stamps it on bundles without importing the
package root, whose lazy API reaches every layer."""

__version__ = "0.1.0"
