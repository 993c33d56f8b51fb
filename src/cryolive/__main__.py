from cryolive.cli import main

main()
