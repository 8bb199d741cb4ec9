"""The chat's rules, pure: no I/O, no event loop, no threads.

    names.py       what a name may be, and the one key names are compared by
                   (NFKC, case folding, UTS #39 look-alikes)
    msgid.py       message ids: 16 digits, ordered as strings, never reused
    pseudonyms.py  --hide-addresses: the pseudonym shown in place of an address
    accounts.py    an account: its record, its password's hash, failed-login limits
    bans.py        bans and mutes: what they match, how long they last, durations

Everything else may import these; they import only each other and imkit.protocol's
vocabulary.
"""
