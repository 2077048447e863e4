"""The shadow log: record schema and validation, the store (append, compact, read), analytics."""
