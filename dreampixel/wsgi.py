import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dreampixel.settings")

application = get_wsgi_application()


def _peer_from_local_front(app):
    # deploy/web.py runs gunicorn on a private Unix socket behind its own nginx, which appends the
    # address it got the request from to X-Forwarded-For. That address is the peer gunicorn would
    # have seen on $PORT: it becomes REMOTE_ADDR again, so the client address (core.clientip)
    # and the access log read exactly as without the front.
    def wrapped(environ, start_response):
        hops = [hop.strip() for hop in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if not environ.get("REMOTE_ADDR") and hops[-1]:  # empty: a Unix socket peer, our nginx
            environ["REMOTE_ADDR"] = hops.pop()
            if hops:
                environ["HTTP_X_FORWARDED_FOR"] = ", ".join(hops)
            else:
                del environ["HTTP_X_FORWARDED_FOR"]
        return app(environ, start_response)

    return wrapped


if os.environ.get("DREAMPIXEL_LOCAL_FRONT") == "1":
    application = _peer_from_local_front(application)
