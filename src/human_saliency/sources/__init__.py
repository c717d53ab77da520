"""The raw sources and the writers of the prepared format: the embedded generator, the real archives,
their parsers (VOC, human masks, MIT1003) and `prepare`."""
