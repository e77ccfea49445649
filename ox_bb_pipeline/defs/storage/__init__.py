"""Where the data lives, as a resource: the data home (lake, warehouse, caches) and the scanner tools."""
