"""`python -m visurf.compare`: the command lives in `visurf.cli.compare`."""

from visurf.cli.compare import main

if __name__ == "__main__":
    main()
