"""Exercise solutions, one file per notebook, loadable with %load."""
