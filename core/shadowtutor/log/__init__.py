"""The shadow log, by job: ``schema`` (the record, defined once), ``storage`` (a folder or a
bucket behind one interface, ``bucketfs`` for DuckDB's reads of a bucket), ``write``, ``read``,
``sql`` (DuckDB), ``analytics`` (the dashboards' queries), ``compaction``, ``ingest`` and
``errors``."""
