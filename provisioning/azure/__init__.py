"""The Azure layer: the only code that imports ``azure.*`` (clients here, operations for the engine)."""
