"""Build history beyond what a daemon keeps: the archive and the merged view of daemons + archive.

    archive = Archive()                               # $ENVD_JUPYTER_HISTORY or ~/.local/share/envd-jupyter/…
    archive.add({"id": ref, "builder": "local", "state": "app", "steps": [...], "graph": {...}, ...})
    archive.list(builder="local", status="failed")    # (summaries, total)
    archive.get(ref)                                  # with steps, graph, scheduling
    items, total = merged_history(archive, {"local": client}, limit=50, errors=errors)

Records are plain dicts (JSON-ready). Imports only ``buildkit`` (for its HistoryRecord).
"""

from envd_jupyter.history._archive import (DEFAULT_MAX_BYTES, DEFAULT_MAX_RECORDS, SCHEMA_VERSION, Archive,
                                           ArchiveError, default_path)
from envd_jupyter.history._merge import merged_history

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_RECORDS", "SCHEMA_VERSION", "Archive", "ArchiveError", "default_path",
           "merged_history"]
