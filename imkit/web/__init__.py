"""``imkit serve --web HOST:PORT``: the chat in a browser.

The web port serves the page (``static/``, from the package) and upgrades ``/ws`` to a
WebSocket (:mod:`imkit.web.http`, h11 and wsproto). A WebSocket client is an ordinary
JSON Lines client of the same hub: its link (:mod:`imkit.web.link`) turns each text
message into one line and each line into one text frame, so everything else (limits,
the idle timeout, password, bans, accounts, the cluster) is the chat port's own code.
"""

from imkit.web.http import WebConfig, load_static, origin_key, serve_http
from imkit.web.link import WebSocketLink

__all__ = ["WebConfig", "WebSocketLink", "load_static", "origin_key", "serve_http"]
