"""Dask engine: the shards evaluated on a Dask cluster, their partial results merged here.

``--dask ADDRESS`` connects to a running scheduler (``tcp://host:8786``); ``--dask local``
starts a cluster of worker processes on this machine, one per core. Each shard pair is one
task: :class:`losscli.shards.ShardWork`, the same steps a local run takes, returning the
shard's :class:`losscli.pipeline.Partial`; the client merges the partials in shard order as
they arrive. A worker that dies is replaced and its tasks run again by Dask's scheduler (up
to ``distributed.scheduler.allowed-failures`` times); a shard that fails names the shard.

Imported only when ``--dask`` is given: the core never imports Dask, which is an optional
extra (``pip install 'losscli[dask]'``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from losscli.errors import LoadError, UsageError

if TYPE_CHECKING:
    from losscli.pipeline import Partial
    from losscli.shards import ShardWork

LOCAL = "local"
# how long to wait for a scheduler given by address (seconds)
CONNECT_SECONDS = 10


def evaluate(
    address: str, work: ShardWork, advance: Callable[[int], None] | None
) -> tuple[Partial, int]:
    """Every shard's partial result, computed on the cluster and merged in shard order.

    The work is sent to the cluster once; at most :data:`AHEAD` tasks per worker run ahead
    of the first shard not yet merged, so that the partial results waiting for it stay few.

    Returns:
        The merged partial result, and how many workers computed shards.

    Raises:
        UsageError: Dask is not installed, or the scheduler cannot be reached.
        LoadError: a shard cannot be read or paired (the worker's own message), its worker
            was lost each time it ran (Dask's KilledWorker), or the cluster was lost, naming
            the shard.
    """
    _installed()
    from distributed import as_completed

    count = work.sharded.count
    with _client(address, count) as client:
        run = uuid.uuid4().hex[:8]
        # the work as a task of its own, not scattered data: a worker lost with it is
        # recomputed (scattered data would be lost, and every shard task with it)
        sent = client.submit(_same, work, key=f"losscli-work-{run}")
        bases = _bases(client, sent, work)
        window = AHEAD * max(len(client.scheduler_info().get("workers", {})), 1)

        def submit(index: int) -> Any:
            key = f"losscli-shard-{index}-{run}"
            return client.submit(_evaluate_shard, sent, index, bases[index], key=key)

        futures = {index: submit(index) for index in range(min(window, count))}
        index_of = {future.key: index for index, future in futures.items()}
        pending = as_completed(list(futures.values()))
        merged: Partial | None = None
        arrived: dict[int, Partial] = {}
        following = 0  # the first shard not merged yet
        workers: set[str] = set()
        for future in pending:
            index = index_of[future.key]
            arrived[index] = _result(future, work, index)
            workers.update(*client.who_has([future]).values())
            future.release()
            if advance is not None:
                advance(arrived[index].samples)
            while following in arrived:  # merged in shard order, as soon as they follow
                partial = arrived.pop(following)
                if merged is None:
                    merged = partial
                else:
                    merged.merge(partial)
                following += 1
            while len(futures) < count and len(futures) < following + window:
                futures[len(futures)] = later = submit(len(futures))
                index_of[later.key] = len(futures) - 1
                pending.add(later)
        assert merged is not None
        return merged, max(len(workers), 1)


# tasks a worker may run ahead of the first shard not yet merged
AHEAD = 2


def _same(work: ShardWork) -> ShardWork:
    """A task: the work itself, sent to the cluster once for every shard's task."""
    return work


def _evaluate_shard(work: ShardWork, index: int, base: int) -> Partial:
    """A task: shard ``index``'s partial result (on a worker)."""
    return work(index, base)


def _count_shard(work: ShardWork, index: int) -> int:
    """A task: how many samples shard ``index`` holds (on a worker)."""
    return work.count(index)


def _result(future: Any, work: ShardWork, index: int) -> Any:
    """What a shard's task returned; a lost worker as one line naming the shard.

    An input error raised on a worker (a malformed row, shards that do not pair) comes back
    as itself; any other exception is losscli's own failure, and is raised as it is.
    """
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        raise LoadError(
            work.sharded.label(index),
            "failed on the Dask cluster: workers died while computing it, more often than "
            "Dask retries a task (KilledWorker)",
        ) from None
    except (OSError, TimeoutError) as error:  # the scheduler lost (CommClosedError)
        raise LoadError(
            work.sharded.label(index),
            f"failed on the Dask cluster: the connection was lost ({type(error).__name__})",
        ) from None


def _bases(client: Any, sent: Any, work: ShardWork) -> list[int]:
    """The global index of each shard's first sample: from the headers (``.npy``), or
    counted on the workers (text is counted by reading it, so text shards are read twice:
    a finding names samples by their index in the whole input)."""
    rows = list(work.sharded.rows)
    unknown = [index for index, found in enumerate(rows) if found is None]
    if unknown:
        futures = [client.submit(_count_shard, sent, index, pure=False) for index in unknown]
        for index, future in zip(unknown, futures, strict=True):
            rows[index] = _result(future, work, index)
    bases, start = [], 0
    for found in rows:
        bases.append(start)
        start += found or 0
    return bases


# the client of the command's session (:func:`session`), with its address
_SESSION: dict[str, Any] = {}


@contextlib.contextmanager
def session(address: str) -> Iterator[None]:
    """One cluster for a whole command: ``compare`` evaluates several losses on it, and Dask
    missing or a scheduler that cannot be reached is found before any work. A local cluster
    starts when the first shards are computed (its workers then start beside this process
    reading the first chunk, not beside its import of torch), and stops with the session.

    Raises:
        UsageError: Dask is not installed, or no scheduler answers at ``address``.
    """
    _installed()
    with contextlib.ExitStack() as stack:
        _SESSION.update(address=address, stack=stack)
        if address != LOCAL:
            _SESSION["client"] = stack.enter_context(_connected(address))
        try:
            yield
        finally:
            _SESSION.clear()


def _installed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError(
            "--dask needs Dask's distributed scheduler, which is not installed",
            tip="pip install 'losscli[dask]'",
        ) from None


@contextlib.contextmanager
def _client(address: str, shards: int) -> Iterator[Any]:
    """The session's client (:func:`session`; a local cluster is started on first use), or
    one of its own."""
    if _SESSION.get("address") == address:
        if _SESSION.get("client") is None:
            _SESSION["client"] = _SESSION["stack"].enter_context(_opened(address, shards))
        yield _SESSION["client"]
        return
    with _opened(address, shards) as client:
        yield client


@contextlib.contextmanager
def _opened(address: str, shards: int) -> Iterator[Any]:
    """A client of the scheduler at ``address``, or of a local cluster of worker processes
    (one per core, and no more than there are shards)."""
    from distributed import Client, LocalCluster

    if address == LOCAL:
        with (
            LocalCluster(
                n_workers=max(1, min(os.cpu_count() or 1, shards)),
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: 8787 may be taken, which Dask warns about
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    with _connected(address) as client:
        yield client


@contextlib.contextmanager
def _connected(address: str) -> Iterator[Any]:
    """A client of the scheduler at ``address``, connected within :data:`CONNECT_SECONDS`.

    Dask's own timeout covers reaching the address, not a listener there that never
    answers (a web server, another service): the connection is made in a thread, and
    given up after the deadline.
    """
    from distributed import Client

    outcome: dict[str, Any] = {}

    def connect() -> None:
        try:
            outcome["client"] = Client(address, timeout=f"{CONNECT_SECONDS}s")
        except Exception as error:  # every way of failing is one line
            outcome["error"] = error

    thread = threading.Thread(target=connect, name="dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_SECONDS + 5)
    if "client" not in outcome:
        error = outcome.get("error")
        said = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        raise UsageError(
            f"--dask {address}: cannot reach a Dask scheduler there "
            + (f"({said.rstrip(': ')})" if error is not None else "(no answer)"),
            tip="give the scheduler's address as tcp://host:8786, or --dask local",
        )
    with outcome["client"] as client:
        yield client
