"""Package data: the JSON Schema of each prescription format version."""
