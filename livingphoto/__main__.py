from livingphoto.cli import run

run()
