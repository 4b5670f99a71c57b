"""`python -m dangliang`: the command line."""

from dangliang.cli.main import main

if __name__ == "__main__":
    main()
