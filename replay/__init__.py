"""Replay for analysts: `vigie replay list/show/rerun/report/export-opendata/export-shared` (replay/cli.py).

query.py and source.py read the event store (a folder or the city bucket), rerun.py and footage.py replay recorded
footage through edge.pipeline.Pipeline, compare.py matches two runs and scores labels, report.py and report_map.py
draw, opendata/ writes the open and shared data packages. Nothing is re-exported here: the CLI imports each module
when its command runs.
"""
