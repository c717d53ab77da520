"""Files and bytes: atomic outputs, image decoding, the map store, downloads, archives and weight files."""
