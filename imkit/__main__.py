from imkit.cli import main

main()
