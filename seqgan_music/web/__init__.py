"""The Streamlit page's tabs (``app.py`` draws them): one module per tab, and what they share."""
