"""`python -m visurf.run`: the command lives in `visurf.cli.run`."""

from visurf.cli.run import main

if __name__ == "__main__":
    main()
