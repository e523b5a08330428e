"""`python -m visurf.eval`: the command lives in `visurf.cli.eval`."""

from visurf.cli.eval import main

if __name__ == "__main__":
    main()
