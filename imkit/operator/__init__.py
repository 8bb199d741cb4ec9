"""What an operator asks of a running server, through its local admin socket.

    admin_socket.py         the Unix socket: who may connect, one request a line
    answers.py              REQUESTS, the one table of request types and their
                            handlers; who, kick, stats and history
    served.py               what the answers need of the server (Administered), the
                            shape of a handler, the error reply
    moderation_requests.py  ban, unban, bans, mute, unmute, history delete
    account_requests.py     imkit account: add, remove, password, list, show

The commands that send these requests are in imkit.cli; what they send with is
imkit.client.admin, which imports nothing of this package.
"""
