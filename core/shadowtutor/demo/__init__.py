"""Demo data: a realistic shadow log and database, generated in seconds."""
