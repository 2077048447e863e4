"""The Streamlit pages: one thin file per page (run as scripts by the router, not imported)."""
