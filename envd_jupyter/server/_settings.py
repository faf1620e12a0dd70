"""``EnvdServer``: the extension's settings (``c.EnvdServer.fleet = "fleet.yaml"`` in jupyter_server_config)."""

from traitlets import Float, Int, Unicode
from traitlets.config import Configurable


class EnvdServer(Configurable):
    """Where the panel's builders and history come from, and how long a daemon may take to answer."""

    fleet = Unicode("", config=True, help="Path of a fleet config file (builders: {name: address}); "
                                          "empty: the project's daemons (fleet.project_builders()).")
    history = Unicode("", config=True, help="Path of the build archive (SQLite); empty: $ENVD_JUPYTER_HISTORY "
                                            "or ~/.local/share/envd-jupyter/history.sqlite3.")
    timeout = Float(10.0, config=True, help="Seconds one daemon call may take before the request answers "
                                            "with an error for that builder.")
    threads = Int(4, config=True, help="Threads that make daemon and archive calls (never the server's loop).")
    listing_ttl = Float(5.0, config=True, help="Seconds a daemon's history listing serves further pages and "
                                               "filters; while a panel listens, the daemon's watch keeps it current.")
    archive_check_interval = Float(1.0, config=True, help="Seconds between checks of the archive file for new "
                                                          "builds, only while a panel listens for events.")
    watch_retry_interval = Float(30.0, config=True, help="Seconds before a builder whose history could not be "
                                                         "watched is tried again, while a panel listens.")
