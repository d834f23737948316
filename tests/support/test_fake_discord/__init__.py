"""The fake Discord's own tests: the real discord.py client against it, one module per part of the fake."""
