"""Panel views. Each is a small Viewer that reads through a shared DataStore."""
