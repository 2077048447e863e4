"""Training-data export: selection, building examples, PII scrubbing, the folder's docs."""
