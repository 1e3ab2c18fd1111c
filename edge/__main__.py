from edge.cli import main

main(prog_name="vigie")
