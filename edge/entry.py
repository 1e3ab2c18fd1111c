"""The installed `vigie` command's entry point: a module that costs nothing to import.

multiprocessing's spawn start method runs the parent's main script again in every child it starts, before the
child's own work. The installed `vigie` script imports its entry point at its top, so with `edge.cli:main` as the
entry point every recorder process (edge/recorder_link.py) loaded the whole command line with pydantic and click:
120 modules it never uses, 11 MB of its memory (benchmarks/profile_memory.py lists the extension modules each process
loads). `python -m edge` was spared: spawn does not run a package's __main__ again.
"""

from __future__ import annotations


def main() -> None:
    from edge.cli import main as cli

    cli()
