"""The project's settings as the environment makes them, with allauth's Google endpoints sent to
a fake Google on loopback (FAKE_GOOGLE_URL): what the Google-only test serves a whole site with.
allauth reads these endpoints when its Google views are imported, so they are settings."""

from __future__ import annotations

import os

from dreampixel.settings import *  # noqa: F403
from dreampixel.settings import SOCIALACCOUNT_PROVIDERS

_FAKE_GOOGLE = os.environ["FAKE_GOOGLE_URL"]
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        **SOCIALACCOUNT_PROVIDERS["google"],
        "AUTHORIZE_URL": f"{_FAKE_GOOGLE}/o/oauth2/v2/auth",
        "ACCESS_TOKEN_URL": f"{_FAKE_GOOGLE}/token",
        "IDENTITY_URL": f"{_FAKE_GOOGLE}/oauth2/v2/userinfo",
    }
}
# Mail as files in MAIL_DIR: the test reads the sign-in code allauth sends before a staff member
# sets up their authenticator.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ["MAIL_DIR"]
# As in the rest of the suite: hashed static names exist only after collectstatic.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
