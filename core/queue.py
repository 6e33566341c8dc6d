"""The job queue: Dramatiq over Redis when REDIS_URL is set, an in-process worker otherwise.

Actors are declared with :func:`actor` at import time and bound to the broker that the app
factory builds, so one code base serves the ``dramatiq`` CLI workers, the embedded in-process
worker and the tests (which build several apps in one process). Each message runs inside an
app context. Work is enqueued with :func:`enqueue_after_commit`, so a job never runs before the
rows it reads exist; if the broker is unreachable the rows remain and a reconciler re-enqueues.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from core import db
from core.logsafe import log_failure

log = logging.getLogger(__name__)

_REGISTRY: dict[str, LazyActor] = {}


class LazyActor:
    """An actor declared at import time and bound to a broker when an app is created."""

    def __init__(self, fn: Callable[..., Any], queue_name: str, options: dict[str, Any]) -> None:
        self.fn = fn
        self.actor_name = f"{fn.__module__}.{fn.__name__}"
        self.queue_name = queue_name
        self.options = options
        self._actor: dramatiq.Actor[Any, Any] | None = None

    def bind(self, broker: dramatiq.Broker) -> None:
        self._actor = dramatiq.Actor(
            self.fn,
            broker=broker,
            actor_name=self.actor_name,
            queue_name=self.queue_name,
            priority=0,
            options=self.options,
        )

    @property
    def bound(self) -> dramatiq.Actor[Any, Any]:
        if self._actor is None:
            raise RuntimeError(f"{self.actor_name} is not bound: create the app first")
        return self._actor

    def send(self, *args: Any) -> None:
        """Enqueue now. Prefer :func:`enqueue_after_commit` inside a transaction."""
        self.bound.send(*args)

    def send_with_options(self, *, args: tuple[Any, ...], delay: int | None = None) -> None:
        """Enqueue with a delay in milliseconds."""
        self.bound.send_with_options(args=args, delay=delay)

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)


def actor(queue_name: str = "default", **options: Any) -> Callable[[Callable[..., Any]], LazyActor]:
    """Declare a task; it takes ids only and calls a service."""

    def decorate(fn: Callable[..., Any]) -> LazyActor:
        lazy = LazyActor(fn, queue_name, options)
        _REGISTRY[lazy.actor_name] = lazy
        return lazy

    return decorate


class AppContextMiddleware(Middleware):
    """Run every message inside an app context, so services find the database and config."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._contexts: dict[int, Any] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        import threading

        ctx = self.app.app_context()
        ctx.push()
        self._contexts[threading.get_ident()] = ctx

    def _pop(self) -> None:
        import threading

        ctx = self._contexts.pop(threading.get_ident(), None)
        if ctx is not None:
            ctx.pop()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._pop()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._pop()


class StoppingMiddleware(Middleware):
    """Set ``stopping`` as soon as the worker is asked to stop (dramatiq's SIGTERM handling
    calls this before it waits for the running jobs), so long jobs can end early and cleanly."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        log.info("worker stopping: running jobs give back the work they have not started")
        self.stopping.set()


class Queue:
    """The broker of one app, and its in-process worker when there is no Redis."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        url = app.config["REDIS_URL"]
        self.broker: dramatiq.Broker
        if url:
            self.broker = RedisBroker(url=url, namespace=app.config["REDIS_NAMESPACE"])
        else:
            self.broker = StubBroker()
            self.broker.emit_after("process_boot")
        self.broker.add_middleware(AppContextMiddleware(app))
        #: Set once this process's worker is stopping (a deploy's SIGTERM); see :func:`stopping`.
        self.stopping = threading.Event()
        self.broker.add_middleware(StoppingMiddleware(self.stopping))
        dramatiq.set_broker(self.broker)
        for lazy in _REGISTRY.values():
            lazy.bind(self.broker)
        self.worker: dramatiq.Worker | None = None

    @property
    def is_inprocess(self) -> bool:
        return isinstance(self.broker, StubBroker)

    def start_worker(self, threads: int = 2) -> None:
        """Start worker threads in this process (embedded default and tests)."""
        if self.worker is None:
            self.worker = dramatiq.Worker(self.broker, worker_timeout=100, worker_threads=threads)
            self.worker.start()

    def drain(self, timeout_ms: int = 60_000) -> None:
        """Wait until every declared queue is empty and its messages processed (tests, CLI)."""
        self.start_worker()
        assert self.worker is not None
        for _ in range(3):  # jobs may enqueue follow-up jobs
            for queue_name in list(self.broker.get_declared_queues()):
                if isinstance(self.broker, StubBroker):
                    self.broker.join(queue_name, timeout=timeout_ms, fail_fast=True)
                else:
                    self.broker.join(queue_name, timeout=timeout_ms)
            self.worker.join()

    def stop(self) -> None:
        """Stop the worker threads and close the broker."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        self.broker.close()


def init_app(app: Flask) -> Queue:
    """Build the app's broker, bind every declared actor to it and return the queue."""
    queue = Queue(app)
    app.extensions["queue"] = queue
    return queue


def current_queue() -> Queue:
    """The queue of the current app."""
    from flask import current_app

    queue: Queue = current_app.extensions["queue"]
    return queue


def stopping() -> threading.Event:
    """The current app's worker-stopping flag: a job that checks it between units of work
    (the send loop, per message) gives back what it has not started and returns at once."""
    return current_queue().stopping


def enqueue_after_commit(task: LazyActor, *args: Any, delay: int | None = None) -> None:
    """Enqueue ``task(*args)`` once the current transaction commits; never if it rolls back.

    ``delay``: milliseconds before the job may run.
    """
    db.session().info.setdefault("pending_tasks", []).append((task, args, delay))


@event.listens_for(Session, "after_commit")
def _send_pending_tasks(session: Session) -> None:
    for task, args, delay in session.info.pop("pending_tasks", []):
        try:
            if delay:
                task.send_with_options(args=args, delay=delay)
            else:
                task.send(*args)
        except Exception as exc:
            # The rows are committed; the reconciler finds unfinished work and re-enqueues it.
            log_failure(
                log, exc, "could not enqueue %s; the reconciler will pick it up", task.actor_name
            )


@event.listens_for(Session, "after_rollback")
def _drop_pending_tasks(session: Session) -> None:
    session.info.pop("pending_tasks", None)
