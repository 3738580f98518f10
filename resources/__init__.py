"""Icons, style sheets and the desktop entry, read through importlib.resources."""
