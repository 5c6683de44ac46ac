"""Container registry and runtimes."""
