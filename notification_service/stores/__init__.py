"""Durable stores shared by the features: what must survive a restart.

Each feature keeps its own store type beside its code (``spaces.py``,
``webpush/store.py``); this package holds what they share: the PostgreSQL pool
and versioned schema migrations (:mod:`.postgres`), used when ``--database-url``
is set. Without it every store is a SQLite file in the data folder.
"""
