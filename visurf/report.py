"""`python -m visurf.report`: the command lives in `visurf.cli.report`."""

from visurf.cli.report import main

if __name__ == "__main__":
    main()
