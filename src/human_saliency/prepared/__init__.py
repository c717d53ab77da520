"""The readers of the prepared format: split indexes, masks at the working size, image loaders."""
