"""Cogs: one feature each, talking to the services on the bot object, never to each other."""
