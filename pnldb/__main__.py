"""`python -m pnldb` is the `pnldb` command (the bench times `pnldb load facts` this way, in its own process)."""
from pnldb.cli import main

if __name__ == "__main__":
    main(prog_name="pnldb")
