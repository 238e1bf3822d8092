"""`python -m fraud_app`, and the bundle's executable: no arguments (a double-click) starts the desktop app;
anything else is the `fraud-app` command line."""
import sys

from fraud_app.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["desktop"]))
