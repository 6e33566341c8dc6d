"""The hit buffer between the tracking endpoints and the event store.

The beacon and click endpoints never write to the database. They push each hit (already
reduced by the privacy layer) into a buffer, and a worker ingests the buffer in batches:

- with ``REDIS_URL``: a Redis list ``<namespace>:tracking:hits``. A request queues its hit in
  the process and is answered; a flusher thread per process wakes when the queue stops being
  empty, lets ``TRACKING_FLUSH_INTERVAL_MS`` (5) of hits gather and RPUSHes them all in one
  round trip. A Redis round trip costs several times the rest of a hit, so sharing it is
  what keeps the hot path cheap. A hard kill of a web process can therefore lose the hits it
  answered during its last flush interval and round trip (measured by
  bench/tracking_bench.py). With ``TRACKING_ANSWER_AFTER_FLUSH=true`` a request is answered
  only once its hit is in Redis or the spool (the first waiting thread flushes, group
  commit), and a hard kill loses no answered hit, for more CPU per hit.
  The push also sets a short-lived "kick" key and, when it was not set, enqueues the ingest
  actor. If Redis is unreachable the batch is appended to a local spool file instead (and
  Redis is not retried for a second); a background thread replays spool files into Redis once
  it answers again, including files left by processes that died. A graceful exit flushes
  whatever is queued.
- without Redis (the embedded default): an in-process queue, ingested by the in-process worker.
  A graceful exit ingests what is left, or spools it; the spool is replayed at start.

The consumer side (:func:`drain`) holds a lock (a Redis key with a token, or a thread lock)
so one consumer at a time reads the list; it removes a batch only after the batch committed,
and the events' unique hit ids make a batch ingested twice harmless.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask

from core.logsafe import log_failure
from tracking.hits import Hit

log = logging.getLogger(__name__)

#: How long Redis is not retried after it failed (pushes go to the spool meanwhile).
REDIS_RETRY_SECONDS = 1.0
#: How long the kick key lives: a lost ingest job is re-enqueued by a push after this.
KICK_TTL_MS = 3000
#: Longest a request waits for its hit to reach Redis or the spool before answering anyway.
DURABLE_WAIT = 2.0
#: After a failed ingest (database down), how long pushes do not enqueue another job.
FAILED_KICK_TTL_MS = 30_000
#: How long a consumer's lock lives without being renewed.
LOCK_TTL_MS = 60_000


class Spool:
    """Append-only local files of encoded hits, replayed when the buffer is reachable again.

    Each process writes its own file and holds an exclusive ``flock`` on it while open, so a
    replayer only takes files whose writer has closed them or died.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: Any = None
        self._lock = threading.Lock()

    def append(self, lines: Iterable[bytes]) -> None:
        """Write lines to this process's spool file (flushed to the OS, survives a kill)."""
        with self._lock:
            if self._file is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                path = self.directory / f"hits-{os.getpid()}-{time.time_ns()}.jsonl"
                handle = open(path, "ab")  # noqa: SIM115 - kept open while spooling
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._file = handle
            self._file.write(b"".join(line + b"\n" for line in lines))
            self._file.flush()

    def close(self) -> None:
        """Close this process's file (it becomes replayable)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def has_files(self) -> bool:
        return self.directory.is_dir() and any(self.directory.glob("hits-*.jsonl"))

    def replay(self, consume: Callable[[list[bytes]], None], chunk: int = 1000) -> int:
        """Hand every replayable line to ``consume`` in chunks; return how many were handed.

        A file is removed once all of its lines were consumed; if ``consume`` fails, the
        lines not yet consumed stay in the file for the next replay.
        """
        self.close()
        if not self.directory.is_dir():
            return 0
        replayed = 0
        for path in sorted(self.directory.glob("hits-*.jsonl")):
            try:
                handle = open(path, "r+b")  # noqa: SIM115 - closed below
            except FileNotFoundError:
                continue
            with handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its writer is alive and spooling
                lines = [line for line in handle.read().split(b"\n") if line.strip()]
                done = 0
                try:
                    for start in range(0, len(lines), chunk):
                        consume(lines[start : start + chunk])
                        done = start + len(lines[start : start + chunk])
                except Exception:
                    handle.seek(0)
                    handle.truncate()
                    handle.write(b"".join(line + b"\n" for line in lines[done:]))
                    handle.flush()
                    replayed += done
                    raise
                path.unlink()
                replayed += done
        return replayed


class InProcessBuffer:
    """Hits queued in this process, ingested by the in-process worker (no Redis)."""

    is_redis = False

    def __init__(self, spool: Spool, kick: Callable[[], None]) -> None:
        self.spool = spool
        self._kick = kick
        self._pending: deque[bytes] = deque()
        self._kicked = False
        self._consumer = threading.Lock()

    def push(self, line: bytes) -> None:
        """Queue a hit (a line of :func:`~tracking.hits.encode_hit`) and make sure an ingest job
        will see it. Never touches the database."""
        self._pending.append(line)
        if not self._kicked:
            self._kicked = True
            self._kick()

    def pending(self) -> int:
        return len(self._pending)

    def drain(self, ingest: Callable[[list[Hit]], object], batch_size: int) -> int:
        """Ingest everything queued, in batches; on failure put the batch back and raise."""
        if not self._consumer.acquire(blocking=False):
            return 0
        done = 0
        try:
            if self.spool.has_files():
                self.spool.replay(self._pending.extend)
            while True:
                while self._pending:
                    batch = [
                        self._pending.popleft() for _ in range(min(batch_size, len(self._pending)))
                    ]
                    try:
                        ingest(_decode_all(batch))
                    except Exception:
                        self._pending.extendleft(reversed(batch))
                        raise
                    done += len(batch)
                self._kicked = False
                if not self._pending:
                    return done
                self._kicked = True
        finally:
            self._consumer.release()

    def close(self) -> None:
        """Spool what was never ingested (the caller tries to ingest it first)."""
        if self._pending:
            lines = list(self._pending)
            self._pending.clear()
            self.spool.append(lines)
        self.spool.close()


def _decode_all(lines: Iterable[bytes]) -> list[Hit]:
    hits = []
    for line in lines:
        try:
            hits.append(Hit.decode(line))
        except ValueError:
            log.warning("skipped a damaged line of the hit buffer")
    return hits


def _resp(*arguments: bytes) -> bytes:
    """One Redis command in the protocol's request form: an array of bulk strings."""
    head = b"*%d\r\n" % len(arguments)
    return head + b"".join(b"$%d\r\n%s\r\n" % (len(argument), argument) for argument in arguments)


_TRIM_IF_OWNER = """
if redis.call('get', KEYS[2]) == ARGV[1] then
  redis.call('ltrim', KEYS[1], tonumber(ARGV[2]), -1)
  redis.call('pexpire', KEYS[2], tonumber(ARGV[3]))
  return 1
end
return 0
"""

_RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisBuffer:
    """Hits pushed to a Redis list in group-committed batches, spooled when Redis is away."""

    is_redis = True

    def __init__(
        self,
        url: str,
        namespace: str,
        spool: Spool,
        kick: Callable[[], None],
        answer_after_flush: bool = False,
        flush_interval: float = 0.005,
    ) -> None:
        import redis

        #: Wait, before answering, until the request's own hit is in Redis or the spool.
        self.answer_after_flush = answer_after_flush
        #: How long the flusher lets hits gather after the first one before pushing them.
        self.flush_interval = flush_interval
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=0.25, socket_timeout=1.0, health_check_interval=30
        )
        self.key = f"{namespace}:tracking:hits"
        self.kick_key = f"{namespace}:tracking:kick"
        self._key_bytes = self.key.encode()
        self._kick_set = _resp(
            b"SET", self.kick_key.encode(), b"1", b"NX", b"PX", b"%d" % KICK_TTL_MS
        )
        self.lock_key = f"{namespace}:tracking:ingest-lock"
        self.spool = spool
        self._kick = kick
        self._pending: deque[bytes] = deque()
        self._flushing = threading.Lock()
        # Hits are numbered as they are queued; ``_durable`` is how many of them are in Redis
        # or in the spool file (what ``answer_after_flush`` waits for).
        self._queued = 0
        self._durable = 0
        self._progress = threading.Condition()
        self._down_until = 0.0
        self._retry_thread: threading.Thread | None = None
        self._trim = self.client.register_script(_TRIM_IF_OWNER)
        self._release = self.client.register_script(_RELEASE_IF_OWNER)

    # -- producer side (web processes) --------------------------------------------------

    def push(self, line: bytes) -> None:
        """Queue a hit (a line of :func:`~tracking.hits.encode_hit`) for the flusher thread,
        which pushes it within one flush interval.

        With ``answer_after_flush`` the first thread to find no flush running flushes
        everything queued (hits queued meanwhile go with the next round trip), and the call
        returns only once this hit is in Redis or the spool.
        """
        if not self.answer_after_flush:
            self._pending.append(line)  # deque.append is atomic: no lock on the hot path
            if not self._wake.is_set():
                self._start_flusher()
                self._wake.set()
            return
        with self._progress:
            self._pending.append(line)
            self._queued += 1
            mine = self._queued
        self.flush(blocking=False)
        if self._durable < mine:
            with self._progress:
                self._progress.wait_for(lambda: self._durable >= mine, timeout=DURABLE_WAIT)

    def _start_flusher(self) -> None:
        if self._flusher is not None and self._flusher.is_alive():
            return
        with self._progress:
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(
                    target=_flush_loop,
                    args=(weakref.ref(self),),
                    name="tracking-flush",
                    daemon=True,
                )
                self._flusher.start()

    def pending(self) -> int:
        return len(self._pending)

    def flush(self, blocking: bool = True) -> None:
        """Push everything queued in this process to Redis (or to the spool)."""
        while self._pending and self._flushing.acquire(blocking=blocking):
            try:
                while self._pending:
                    batch = [self._pending.popleft() for _ in range(min(2000, len(self._pending)))]
                    try:
                        self._push_batch(batch)
                    finally:
                        if self.answer_after_flush:
                            with self._progress:
                                self._durable += len(batch)
                                self._progress.notify_all()
            finally:
                self._flushing.release()

    def _push_batch(self, batch: list[bytes]) -> None:
        if time.monotonic() < self._down_until:
            self.spool.append(batch)
            self._start_retry_thread()
            return
        try:
            kicked = self._rpush_and_kick(batch)
        except Exception:
            self.spool.append(batch)
            self._down_until = time.monotonic() + REDIS_RETRY_SECONDS
            log.warning("Redis unreachable: %d hits spooled locally", len(batch))
            self._start_retry_thread()
            return
        if kicked:
            self._safe_kick()

    def _rpush_and_kick(self, batch: list[bytes]) -> bool:
        """RPUSH the lines and SET the kick key if absent, in one round trip; True when the
        key was set. The request is packed here (RESP arrays of bulk strings): redis-py's
        pipeline and packer cost about twice the CPU of the rest of a flush. The connection
        and the replies are redis-py's; a connection that failed midway is dropped."""
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(
                [_resp(b"RPUSH", self._key_bytes, *batch) + self._kick_set]
            )
            connection.read_response()
            kicked = connection.read_response() is not None
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)
        return kicked

    def _safe_kick(self) -> None:
        try:
            self._kick()
        except Exception:
            log.warning("could not enqueue the hit ingest; the next push retries")

    def _start_retry_thread(self) -> None:
        if self._retry_thread is not None and self._retry_thread.is_alive():
            return
        self._retry_thread = threading.Thread(
            target=_retry_loop, args=(weakref.ref(self),), name="tracking-spool", daemon=True
        )
        self._retry_thread.start()

    def replay_spool(self) -> int:
        """Move spooled hits (this process's and dead processes') into Redis; return the count."""

        def consume(lines: list[bytes]) -> None:
            self.client.rpush(self.key, *lines)

        with self._flushing:
            replayed = self.spool.replay(consume)
        self.flush()  # hits queued while the replay held the flush lock
        if replayed:
            self._safe_kick()
            log.info("replayed %d spooled hits into Redis", replayed)
        return replayed

    def close(self) -> None:
        """Flush what is queued (a graceful exit): to Redis, or to the spool."""
        self.flush()
        self.spool.close()

    # -- consumer side (the ingest job) -------------------------------------------------

    def drain(
        self, ingest: Callable[[list[Hit]], object], batch_size: int, gather: float = 0.0
    ) -> int:
        """Ingest the Redis list in batches while holding the consumer lock.

        A batch is trimmed from the list only after ``ingest`` committed it, and only while
        this consumer still owns the lock. After a batch smaller than ``batch_size`` while
        hits keep arriving (live traffic), wait ``gather`` seconds so the next batch is larger:
        fewer, bigger transactions cost the database less per hit and compete less with the
        web processes. Returns how many hits were ingested.
        """
        import secrets

        if self.spool.has_files():
            try:
                self.replay_spool()
            except Exception:
                log.warning("spool replay failed; the web processes retry it")
        token = secrets.token_hex(8)
        if not self.client.set(self.lock_key, token, nx=True, px=LOCK_TTL_MS):
            return 0
        done = 0
        try:
            while True:
                lines = self.client.lrange(self.key, 0, batch_size - 1)
                if not lines:
                    self.client.delete(self.kick_key)
                    if self.client.llen(self.key) == 0:
                        return done
                    continue
                try:
                    ingest(_decode_all(lines))
                except Exception:
                    # The job is retried with backoff; meanwhile pushes need not enqueue more.
                    self.client.set(self.kick_key, b"1", px=FAILED_KICK_TTL_MS)
                    raise
                if not self._trim(
                    keys=[self.key, self.lock_key], args=[token, len(lines), LOCK_TTL_MS]
                ):
                    log.warning("lost the hit ingest lock; another consumer continues")
                    return done
                done += len(lines)
                if gather and len(lines) < batch_size and self.client.llen(self.key):
                    time.sleep(gather)
        finally:
            self._release(keys=[self.lock_key], args=[token])

    def backlog(self) -> int:
        """How many hits wait in Redis."""
        return int(self.client.llen(self.key))


def _flush_loop(ref: weakref.ReferenceType[RedisBuffer]) -> None:
    """Flush a buffer one interval after its queue stops being empty; end with the buffer."""
    while True:
        buffer = ref()
        if buffer is None:
            return
        wake, interval = buffer._wake, buffer.flush_interval
        del buffer
        if not wake.wait(timeout=1.0):
            continue
        time.sleep(interval)
        buffer = ref()
        if buffer is None:
            return
        wake.clear()
        try:
            buffer.flush()
        except Exception as exc:
            log_failure(log, exc, "could not flush the hit buffer; retrying")
        del buffer


def _retry_loop(ref: weakref.ReferenceType[RedisBuffer]) -> None:
    """Retry Redis every half second until the spool is replayed; then end."""
    while True:
        time.sleep(0.5)
        buffer = ref()
        if buffer is None:
            return
        try:
            buffer.client.ping()
        except Exception:
            log.info("Redis still unreachable; %d hits wait in the spool", buffer.pending())
            continue
        buffer._down_until = 0.0
        try:
            buffer.flush()
            buffer.replay_spool()
        except Exception:
            log.warning("spool replay interrupted; retrying")
            continue
        if not buffer.spool.has_files() and not buffer.pending():
            return
        del buffer


HitBuffer = InProcessBuffer | RedisBuffer


def get_buffer(app: Flask) -> HitBuffer:
    """The hit buffer of ``app`` in this process (made after a fork, never shared across one)."""
    found = app.extensions.get("tracking_buffer")
    if found is not None and found[0] == os.getpid():
        buffer: HitBuffer = found[1]
        return buffer
    spool = Spool(Path(app.config["TRACKING_SPOOL_DIR"]))
    from tracking import tasks

    def kick() -> None:
        tasks.ingest_buffered_hits.send()

    if app.config["REDIS_URL"]:
        buffer = RedisBuffer(
            app.config["REDIS_URL"],
            app.config["REDIS_NAMESPACE"],
            spool,
            kick,
            answer_after_flush=bool(app.config["TRACKING_ANSWER_AFTER_FLUSH"]),
            flush_interval=float(app.config["TRACKING_FLUSH_INTERVAL_MS"]) / 1000,
        )
    else:
        buffer = InProcessBuffer(spool, kick)
    app.extensions["tracking_buffer"] = (os.getpid(), buffer)
    if isinstance(buffer, RedisBuffer) and spool.has_files():
        buffer._start_retry_thread()  # files left by a process that died: replay them
    atexit.register(_close_at_exit, weakref.ref(app))
    return buffer


def _close_at_exit(ref: weakref.ReferenceType[Flask]) -> None:
    app = ref()
    if app is not None:
        close(app)


def close(app: Flask) -> None:
    """Graceful shutdown: ingest (in-process) or flush (Redis) what is queued; spool the rest."""
    found = app.extensions.get("tracking_buffer")
    if found is None or found[0] != os.getpid():
        return
    buffer: HitBuffer = found[1]
    if isinstance(buffer, InProcessBuffer) and buffer.pending():
        from tracking import services

        try:
            with app.app_context():
                buffer.drain(services.ingest_isolating, 1000)
        except Exception:
            log.warning("could not ingest the last hits at exit; they are spooled")
    try:
        buffer.close()
    except Exception as exc:
        log_failure(log, exc, "could not flush the hit buffer at exit")


def flush(app: Flask) -> None:
    """Push this process's queued hits to Redis and replay any spool (no-op in-process)."""
    buffer = get_buffer(app)
    if isinstance(buffer, RedisBuffer):
        buffer.flush()
        buffer.replay_spool()


def drain(app: Flask) -> int:
    """Ingest what the buffer holds, in batches (the ingest job; needs an app context)."""
    from tracking import services

    buffer = get_buffer(app)
    batch_size = int(app.config["TRACKING_BATCH_SIZE"])
    if isinstance(buffer, RedisBuffer):
        gather = float(app.config["TRACKING_INGEST_GATHER_MS"]) / 1000
        return buffer.drain(services.ingest_isolating, batch_size, gather)
    return buffer.drain(services.ingest_isolating, batch_size)
