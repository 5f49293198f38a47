"""The command families; each module's `register` adds its sub-commands (see `trustgate_cli.main.COMMAND_GROUPS`)."""
