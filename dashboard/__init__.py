"""The Streamlit dashboard: pages, session state and cached resources (``app.py`` at the
repository root is the entry script). A front end: it imports every layer below and is
imported by none."""
