"""What the pages show, as plain data and Plotly figures: read-only view-models (no writes,
no Streamlit). Writes belong to the room that owns them (``cost.budget``, ``gate``,
``review``, ...)."""
