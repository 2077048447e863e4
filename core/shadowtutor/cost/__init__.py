"""What the traffic costs and may save: model prices (``pricing``), spend read from the log
(``spend``) and the monthly budget with its projection (``budget``, which also stores the
budget a manager sets)."""
