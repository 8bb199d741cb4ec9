"""What talks to an imkit server from outside: the async client library (library.py and
its room requests, rooms.py, re-exported here: ``from imkit.client import connect``), the
interactive ``imkit chat`` (chat.py, chat_rooms.py, stdin.py), the load generator
``imkit bench`` (bench.py), the admin socket's client (admin.py) and standard output
for the commands (output.py).

Nothing here imports the server, the hub or the store.
"""

from imkit.client.library import (
    ChatMessage,
    Client,
    HistoryPage,
    Joined,
    NameChange,
    Presence,
    Receipt,
    RoomInfo,
    RoomJoin,
    RoomKicked,
    RoomPart,
    TopicInfo,
    UserInfo,
    connect,
)

__all__ = [
    "ChatMessage",
    "Client",
    "HistoryPage",
    "Joined",
    "NameChange",
    "Presence",
    "Receipt",
    "RoomInfo",
    "RoomJoin",
    "RoomKicked",
    "RoomPart",
    "TopicInfo",
    "UserInfo",
    "connect",
]
