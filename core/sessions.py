"""Sessions that outlive a cache outage.

`cached_db` keeps every session in the database and a copy in the cache (Redis in production).
Django's store already falls back to the database when reading the copy fails, but then writes
it back without catching the cache's error, and `exists` does not catch it either: with Redis
down every signed-in page answered 500. Here reading is best effort; the database stays the
source of truth. Nothing is logged here: the log context reads request.user, which would
load the session again (readyz and the 503 page report the outage). Deleting (sign-out) still
needs the cache: a copy left there would bring the session back once Redis returns, so
sign-out answers 503 until it can remove it.
"""

from __future__ import annotations

import contextlib

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.contrib.sessions.backends.db import SessionStore as DBStore


class SessionStore(CachedDBStore):
    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception:  # the cache is down (or rejects the key): read the database
            return DBStore.load(self)
        if data is not None:
            return data
        session = self._get_session_from_db()
        if not session:
            return {}
        data = self.decode(session.session_data)
        with contextlib.suppress(Exception):  # the copy is made again on a later read
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=session.expire_date))
        return data

    def exists(self, session_key):
        with contextlib.suppress(Exception):  # the cache is down: the database answers
            if session_key and (self.cache_key_prefix + session_key) in self._cache:
                return True
        return DBStore.exists(self, session_key)
