"""Dashboard pages, one module per area of the sidebar."""
