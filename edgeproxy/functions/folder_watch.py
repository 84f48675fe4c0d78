"""Whether anything under a function's folder (``FolderWatch``: a Lambda@Edge function) or a
single file (``FileWatch``: a CloudFront Function's code, a KeyValueStore's file) changed since
the last look, asked before every call of the function.

Where Linux has inotify, the answer is one non-blocking read of a descriptor shared by every
folder the edge watches: the kernel queues a change when the write happens, so a save is seen
by the very next call, and a call costs one system call however many files the folder holds.
Elsewhere (or past the kernel's watch limits) the folder's files are scanned for a changed
stamp, which costs a ``stat`` per file per call.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path

from inotify_simple import INotify
from inotify_simple import flags as inotify_flags  # Linux only, as pyproject.toml says

# Folders whose changes never replace a runtime: caches and what a package manager owns.
UNWATCHED = frozenset({"__pycache__", "node_modules", ".git", ".mypy_cache", ".pytest_cache"})
MAX_WATCHED = 2000  # files (or folders) per function folder; past it, the first ones found

_MASK = (
    inotify_flags.CREATE
    | inotify_flags.DELETE
    | inotify_flags.MODIFY
    | inotify_flags.ATTRIB
    | inotify_flags.CLOSE_WRITE
    | inotify_flags.MOVED_FROM
    | inotify_flags.MOVED_TO
    | inotify_flags.DELETE_SELF
    | inotify_flags.MOVE_SELF
)

FolderStamp = tuple[int, int, int]


def folder_stamp(folder: Path) -> FolderStamp:
    """What tells a changed folder from before: newest mtime, file count and the sum of the
    files' sizes and inodes (a rename-on-save changes the inode within one mtime tick)."""
    newest, count, mix = 0, 0, 0
    pending = [str(folder)]
    while pending and count < MAX_WATCHED:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in UNWATCHED:
                            pending.append(entry.path)
                        continue
                    st = entry.stat()
                except OSError:
                    continue
                newest = max(newest, st.st_mtime_ns)
                count += 1
                mix += st.st_size + st.st_ino + st.st_mtime_ns
    return (newest, count, mix)


def _folders_under(folder: Path) -> list[str]:
    found: list[str] = []
    pending = [str(folder)]
    while pending and len(found) < MAX_WATCHED:
        path = pending.pop()
        found.append(path)
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False) and entry.name not in UNWATCHED:
                        pending.append(entry.path)
        except OSError:
            continue
    return found


class _Notifier:
    """The edge's one inotify descriptor: watch descriptors mapped to the folder watches that
    asked for them (one folder may be under several functions)."""

    def __init__(self) -> None:
        self.inotify = INotify(nonblocking=True)
        self.watchers: dict[int, weakref.WeakSet[FolderWatch | FileWatch]] = {}

    def watch(self, path: str, watcher: FolderWatch | FileWatch) -> None:
        wd = self.inotify.add_watch(path, _MASK)
        self.watchers.setdefault(wd, weakref.WeakSet()).add(watcher)

    def drain(self) -> None:
        """Mark every watch whose folder changed since the last drain."""
        for event in self.inotify.read(timeout=0):
            if event.name in UNWATCHED or event.name.endswith(".pyc"):
                continue
            for watcher in list(self.watchers.get(event.wd, ())):
                if isinstance(watcher, FileWatch) and event.name != watcher.path.name:
                    continue  # another file of the folder
                watcher.dirty = True
                if event.mask & inotify_flags.ISDIR and event.mask & inotify_flags.CREATE:
                    watcher.rewatch = True


_notifier: _Notifier | None = None
_notifier_failed = False


def _shared_notifier() -> _Notifier | None:
    global _notifier, _notifier_failed
    if _notifier is None and not _notifier_failed:
        try:
            _notifier = _Notifier()
        except OSError:  # no inotify here, or no instance left: scan instead
            _notifier_failed = True
    return _notifier


class FolderWatch:
    """One function folder: ``changed()`` says whether anything under it changed since the
    last call that said so."""

    __slots__ = ("folder", "dirty", "rewatch", "_stamp", "_notifier", "__weakref__")

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.dirty = False
        self.rewatch = False
        self._stamp: FolderStamp | None = None
        self._notifier = _shared_notifier()
        if self._notifier is None or not self._watch_all():
            self._notifier = None
            self._stamp = folder_stamp(folder)

    def _watch_all(self) -> bool:
        assert self._notifier is not None
        try:
            for path in _folders_under(self.folder):
                self._notifier.watch(path, self)
        except OSError:  # the kernel's watch limit: scan this folder instead
            return False
        return True

    def changed(self) -> bool:
        if self._notifier is None:
            stamp = folder_stamp(self.folder)
            changed, self._stamp = stamp != self._stamp, stamp
            return changed
        self._notifier.drain()
        if self.rewatch:  # a new sub-folder: watch it (and what was saved into it meanwhile)
            self.rewatch = False
            if not self._watch_all():
                self._notifier = None
                self._stamp = folder_stamp(self.folder)
                return True
        changed, self.dirty = self.dirty, False
        return changed


def file_stamp(path: Path) -> FolderStamp:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1, -1)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class FileWatch:
    """One file: ``changed()`` says whether it was written, replaced or removed since the last
    call that said so. Its folder is watched (not the file), so an editor's save by rename is
    seen too; the first call says True, so its owner reads the file once."""

    __slots__ = ("path", "dirty", "rewatch", "_stamp", "_notifier", "__weakref__")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dirty = True
        self.rewatch = False
        self._stamp: FolderStamp | None = None
        self._notifier = _shared_notifier()
        if self._notifier is not None:
            try:
                self._notifier.watch(str(path.parent), self)
            except OSError:  # the kernel's watch limit: stat the file instead
                self._notifier = None

    def changed(self) -> bool:
        if self._notifier is None:
            stamp = file_stamp(self.path)
            changed, self._stamp = stamp != self._stamp, stamp
            return changed
        self._notifier.drain()
        changed, self.dirty = self.dirty, False
        return changed
