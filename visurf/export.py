"""`python -m visurf.export`: the command lives in `visurf.cli.export`."""

from visurf.cli.export import main

if __name__ == "__main__":
    main()
