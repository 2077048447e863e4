from shadowtutor.cli import main

main(prog_name="shadowtutor")
