"""Image references, classification, the debug image catalog and selection, the registry client."""
