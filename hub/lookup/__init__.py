"""Caller lookup: the index the pipeline keeps (phone / e-mail / name+city -> golden id) and the HTTP API
that answers while the phone rings (``hub serve``; README "Caller lookup").

    refresh_lookup_index(store, full=False) -> LookupIndexStats   the stage, after customer_360 on every sync
    remove_from_lookup_index(store, golden_ids) -> int            erasure / deletion: out of the index now

The API (``hub.lookup.api.create_app``) is imported on its own so the pipeline does not load the web stack.
"""

from hub.lookup.index import LookupIndexStats, refresh_lookup_index, remove_from_lookup_index

__all__ = ["LookupIndexStats", "refresh_lookup_index", "remove_from_lookup_index"]
