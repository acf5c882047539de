from ailedger.cli.main import main

main(prog_name="ailedger")
