"""Discord's permission bits, by name: what guilds grant members and what the bot holds in a channel.

Apart from the guild models because both the models (``FakeGuild.permissions_for``) and the
injected interactions (``app_permissions``, a member's ``permissions``) need them, and tests import
them to build members with or without a right.
"""

from __future__ import annotations

# Permission bits the fake needs by name (values from Discord's documentation).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
#: Every bit Discord currently defines (and a few spare); what owners and administrators get.
ALL_PERMISSIONS = (1 << 51) - 1
#: What ``@everyone`` may do in a freshly created server: enough to use slash commands, not to manage.
DEFAULT_EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | ADD_REACTIONS
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
#: The bot's permissions in a channel when the test does not say otherwise.
DEFAULT_APP_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY | USE_EXTERNAL_EMOJIS
)
