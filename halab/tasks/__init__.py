"""invoke collections: one module per namespace, no logic (each task calls the package)."""
