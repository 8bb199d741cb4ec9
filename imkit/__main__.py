from imkit.cli import main

main(prog_name="imkit")
