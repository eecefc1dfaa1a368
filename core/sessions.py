"""Sessions that outlive a cache outage, and a sign-out that holds while the cache is away.

`cached_db` keeps every session in the database and a copy in the cache (Redis in production).
Django's store already falls back to the database when reading the copy fails, but then writes
it back without catching the cache's error, and `exists` does not catch it either: with Redis
down every signed-in page answered 500. Here reading is best effort; the database stays the
source of truth. Nothing is logged here: the log context reads request.user, which would
load the session again (readyz and the 503 page report the outage).

Signing out deletes the database row, which is what signs the person out, and then the copy.
While the cache is unreachable the copy cannot go, and a cache that comes back with its data
(a network partition, not a restart) would hand the old session to anyone holding its cookie.
Two things bound that: this process remembers the copies it could not remove and removes them
(and refuses them) at its next working cache call, and every copy lives at most
SESSION_CACHE_SECONDS, after which the session is read from the database again.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.core.cache.backends.base import BaseCache

# Cache keys of signed-out sessions whose copy is still in the cache, in this process. Bounded:
# a long outage with many sign-outs leaves the rest to SESSION_CACHE_SECONDS.
_SIGNED_OUT_COPIES: set[str] = set()
_SIGNED_OUT_COPIES_MAX = 10_000


class SessionStore(CachedDBStore):
    _cache: BaseCache  # set by Django's __init__

    def _copy_lifetime(self, expiry_age: int) -> int:
        return min(expiry_age, settings.SESSION_CACHE_SECONDS)

    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception:  # the cache is down (or rejects the key): read the database
            return DBStore.load(self)
        if _SIGNED_OUT_COPIES:
            if self.cache_key in _SIGNED_OUT_COPIES:
                data = None  # a copy left behind by a sign-out: the database says it is gone
            self._remove_signed_out_copies()
        if data is not None:
            return data
        session = self._get_session_from_db()
        if not session:
            return {}
        data = self.decode(session.session_data)
        with contextlib.suppress(Exception):  # the copy is made again on a later read
            self._cache.set(self.cache_key, data, self._copy_lifetime(self.get_expiry_age(expiry=session.expire_date)))
        return data

    def save(self, must_create=False):
        DBStore.save(self, must_create)
        with contextlib.suppress(Exception):  # the database has it; the copy is made on a later read
            self._cache.set(self.cache_key, self._session, self._copy_lifetime(self.get_expiry_age()))

    def exists(self, session_key):
        with contextlib.suppress(Exception):  # the cache is down: the database answers
            if session_key and (self.cache_key_prefix + session_key) in self._cache:
                return True
        return DBStore.exists(self, session_key)

    def delete(self, session_key=None):
        DBStore.delete(self, session_key)  # the row is the session: without it, it is over
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        key = self.cache_key_prefix + session_key
        try:
            self._cache.delete(key)
        except Exception:
            # Signed out all the same; the copy goes at this process's next working cache call.
            if len(_SIGNED_OUT_COPIES) < _SIGNED_OUT_COPIES_MAX:
                _SIGNED_OUT_COPIES.add(key)

    def _remove_signed_out_copies(self) -> None:
        keys = list(_SIGNED_OUT_COPIES)
        with contextlib.suppress(Exception):
            self._cache.delete_many(keys)
            _SIGNED_OUT_COPIES.difference_update(keys)
