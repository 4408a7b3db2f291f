"""Page scripts that ``st.navigation`` runs; each draws one page from the package."""
