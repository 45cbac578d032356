"""Web Push across nodes: each push batch is a job on ``{prefix}:push``, sent by one node.

With ``--redis-url`` and ``--database-url`` (subscriptions shared in
PostgreSQL), the node that publishes an event asking for push does not send
it itself: it adds one job (event id, channel, the encrypted-to-be payload and
the push options) to the stream, and every node reads the stream through one
consumer group (:mod:`..cluster.workqueue`), so each job is sent by exactly
one node, whichever is free. A node killed mid-job leaves the job pending
under its name; once its liveness key is gone (15 s) another node takes it
over and sends the batch again (subscriptions the dead node had reached
before dying may get that push twice; a push is never lost). The sending
node reports the batch's counts on ``{prefix}:push:done:{event id}``, where
the publishing node waits for them when its producer asked
(``POST /webpush/notify``, the blocking Python verbs).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Sequence

import orjson
import redis.asyncio as aioredis

from ..cluster.nodes import NodeLiveness
from ..cluster.redis import RedisKeys
from ..cluster.workqueue import Entry, WorkQueue
from .sender import PushOptions, SendReport, WebPushSender
from .store import SubscriptionStore
from .transport import ALL_SUBSCRIPTIONS

log = logging.getLogger(__name__)

JOBS_PER_READ = 8
"""Jobs one node takes at once: the others stay for nodes with less to do."""
OUTCOME_SECONDS = 300
"""How long a batch's counts are kept for the publishing node."""
OUTCOMES_KEPT = 1000


def job_fields(event_id: str, channel: str, payload: bytes, options: PushOptions
               ) -> dict[str, bytes | str]:
    """One job as it is written to the stream."""
    return {"event": event_id, "channel": channel, "payload": payload,
            "options": orjson.dumps({"ttl": options.ttl, "urgency": options.urgency,
                                     "topic": options.topic})}


class PushJobs:
    """Queues this node's pushes for the cluster and sends the jobs it gets.

    :param outcome_wait: the longest a producer waits for the counts of a batch
        another node sends (then it is answered with what is known: nothing sent).
    """

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, queue: WorkQueue,
                 store: SubscriptionStore, sender: WebPushSender, outcome_wait: float) -> None:
        self.client = client
        self.keys = keys
        self.queue = queue
        self.store = store
        self.sender = sender
        self.outcome_wait = outcome_wait
        self._queued: OrderedDict[str, None] = OrderedDict()

    async def enqueue(self, event_id: str, channel: str, payload: bytes,
                      options: PushOptions) -> None:
        await self.client.xadd(self.keys.push_jobs, job_fields(event_id, channel, payload,
                                                               options))
        self._queued[event_id] = None
        while len(self._queued) > OUTCOMES_KEPT:
            self._queued.popitem(last=False)

    async def outcome(self, event_id: str) -> SendReport:
        """The counts of the batch an event of this node queued (zeros if it queued none)."""
        if event_id not in self._queued:
            return SendReport()
        del self._queued[event_id]
        key = self.keys.push_outcome(event_id)
        answer = await self.client.blpop([key], timeout=self.outcome_wait)
        if answer is None:
            log.warning("web push: no node reported the batch of event %s within %g s",
                        event_id, self.outcome_wait)
            return SendReport()
        return SendReport(**orjson.loads(answer[1]))

    async def handle(self, entries: Sequence[Entry]) -> None:
        """Send every job of the batch at once (the sender bounds requests in flight).

        Each job is acknowledged as soon as it is sent, so a job that fails (the
        database does not answer) is tried again alone, never its neighbours.
        """
        results = await asyncio.gather(*(self._send(entry_id, fields)
                                         for entry_id, fields in entries),
                                       return_exceptions=True)
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            raise failed[0]

    async def _send(self, entry_id: str, fields: dict[str, bytes]) -> None:
        event_id, channel = fields["event"].decode(), fields["channel"].decode()
        options = PushOptions(**orjson.loads(fields["options"]))
        if channel == ALL_SUBSCRIPTIONS:
            subscriptions = await self.store.all()
        else:
            subscriptions = await self.store.for_channel(channel)
        report = await self.sender.send(subscriptions, fields["payload"], options)
        key = self.keys.push_outcome(event_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, orjson.dumps(report.to_dict()))
            pipe.expire(key, OUTCOME_SECONDS)
            await pipe.execute()
        await self.queue.done([entry_id])

    def start(self) -> None:
        self.queue.start(self.handle, "webpush-jobs")

    async def stop(self) -> None:
        await self.queue.stop()


def push_jobs(client: aioredis.Redis, keys: RedisKeys, liveness: NodeLiveness,
              store: SubscriptionStore, sender: WebPushSender, outcome_wait: float) -> PushJobs:
    """The node's push jobs, read under its name (``--node-name``) in the shared group."""
    queue = WorkQueue(client, keys.push_jobs, liveness.name, liveness, batch=JOBS_PER_READ)
    return PushJobs(client, keys, queue, store, sender, outcome_wait)
