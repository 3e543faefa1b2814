from cstrack.cli import main

main()
