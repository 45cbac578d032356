"""Scale-out: what several nodes share through Redis (only used when ``--redis-url`` is set).

:mod:`.redis` opens the node's one Redis client and names every key;
:mod:`.nodes` announces this node alive and tells which nodes are. Without
``--redis-url`` nothing here runs and nothing here is imported by the app.
"""
