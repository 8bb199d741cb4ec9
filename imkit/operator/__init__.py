"""What an operator asks of a running server, through its local admin socket.

    admin_socket.py         the Unix socket: who may connect, one request a line
    answers.py              who, kick, stats and history, and which module answers
                            the other requests
    moderation_requests.py  ban, unban, bans, mute, unmute, history delete
    account_requests.py     imkit account: add, remove, password, list, show

The commands that send these requests are in imkit.cli; what they send with is
imkit.client.admin, which imports nothing of this package.
"""
