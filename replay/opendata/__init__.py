"""Data the city can publish or share: `vigie replay export-opendata` (counts.py) and `export-shared` (shared.py).

Both write a Frictionless Data Package (package.py) into a folder that appears whole or not at all (folder.py), with
a README in French and English (readme.py). The commands are in cli.py. Nothing is re-exported here: importing this
package must stay free of pyarrow, since the `vigie` command loads the commands' module at start.
"""
