"""Build the Dockerfile's image here and run its processes from the image's own filesystem.

This machine has no container daemon and podman cannot start containers in its sandbox, but
podman builds (`--isolation chroot`), mounts an image's filesystem, and a chroot into it runs the
image's entrypoint with the host's network. So: a Debian bookworm base made with debootstrap
(python3.11, as the official python:3.11 images carry) is imported once and kept in podman's
storage (a second run reuses it, and podman's layer cache); the Dockerfile is built on it through
its PYTHON_IMAGE argument; each process then runs as a container would: the image's user, working
directory, environment and entrypoint, a private /tmp, /proc and /dev, everything else read-only.

The base also carries the host's locally added CA certificates (Debian's local CA folder): where
the package index is reached through a TLS-inspecting proxy, pip in the build needs them. That is
a property of this test base, not of the product's image.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.procfile import ROOT

SUITE = "bookworm"
PACKAGES = "python3.11,python3.11-venv,python3-distutils,ca-certificates"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("DREAMPIXEL_TEST_CACHE", Path.home() / ".cache" / "dreampixel-tests"))
LOCAL_CAS = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
IMAGE = "localhost/dreampixel-test-image:latest"


def podman(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True, **kwargs)


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    # Other runs on this machine (another checkout's make test) share podman's storage.
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def base_image() -> str:
    """The debootstrap base, made once per recipe (and CA set) and kept in podman's storage."""
    recipe = f"{SUITE} {PACKAGES} " + " ".join(hashlib.sha256(ca.read_bytes()).hexdigest() for ca in LOCAL_CAS)
    tag = f"localhost/dreampixel-test-base:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    with _locked("base"):
        if subprocess.run(["podman", "image", "exists", tag]).returncode == 0:
            return tag
        rootfs = Path(tempfile.mkdtemp(prefix="dreampixel-base-", dir=CACHE))
        try:
            (CACHE / "debs").mkdir(exist_ok=True)
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--cache-dir={CACHE / 'debs'}", f"--include={PACKAGES}",
                 SUITE, str(rootfs), MIRROR],
                check=True, capture_output=True,
            )  # fmt: skip
            for ca in LOCAL_CAS:
                shutil.copy(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
            subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], check=True, capture_output=True)
            bundle = "/etc/ssl/certs/ca-certificates.crt"
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            subprocess.run(
                ["podman", "import", "--change", f"ENV PIP_CERT={bundle}", "--change", f"ENV SSL_CERT_FILE={bundle}",
                 "-", tag],
                stdin=tar.stdout, check=True, capture_output=True,
            )  # fmt: skip
            tar.wait()
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
    return tag


@dataclass
class Build:
    image: str
    seconds: float
    size_mb: float
    base_size_mb: float
    config: dict = field(default_factory=dict)


def build_image(base: str) -> Build:
    """`podman build` of the repository's Dockerfile on `base`, as `docker build .` would."""
    with _locked("image"):
        old = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Id}}", IMAGE], capture_output=True, text=True
        )
        started = time.monotonic()
        podman(
            "build", "--isolation", "chroot", "--format", "docker", "--build-arg", f"PYTHON_IMAGE={base}",
            "--tag", IMAGE, "--file", str(ROOT / "Dockerfile"), str(ROOT),
            timeout=1200,
        )  # fmt: skip
        seconds = time.monotonic() - started
        new_id = podman("image", "inspect", "--format", "{{.Id}}", IMAGE).stdout.strip()
        if old.returncode == 0 and old.stdout.strip() != new_id:
            subprocess.run(["podman", "rmi", old.stdout.strip()], capture_output=True)  # the last run's, now untagged
        inspected = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
        base_size = json.loads(podman("image", "inspect", base).stdout)[0]["Size"]
    return Build(
        image=IMAGE,
        seconds=seconds,
        size_mb=inspected["Size"] / 1e6,
        base_size_mb=base_size / 1e6,
        # podman keeps a docker-format image's HEALTHCHECK beside its config, not in it.
        config={**inspected["Config"], "Healthcheck": inspected.get("Healthcheck")},
    )


@dataclass
class Mounted:
    root: Path
    config: dict

    def user_ids(self) -> tuple[int, int, str]:
        user = self.config.get("User") or "root"
        for line in (self.root / "etc" / "passwd").read_text().splitlines():
            name, _, uid, gid, _, home, _ = line.split(":")
            if user in (name, uid):
                return int(uid), int(gid), home
        raise LookupError(f"the image's user {user!r} is not in its /etc/passwd")

    def command(self, args: list[str], env: dict[str, str]) -> list[str]:
        """A command line that runs `args` (after the image's entrypoint) as a container would."""
        uid, gid, home = self.user_ids()
        image_env = dict(item.split("=", 1) for item in self.config.get("Env") or [])
        environment = {**image_env, "HOME": home, "HOSTNAME": "dreampixel-test", **env}
        entrypoint = self.config.get("Entrypoint") or []
        workdir = self.config.get("WorkingDir") or "/"
        root = str(self.root)
        # A private mount namespace: /proc, /dev and an empty /tmp of its own over the read-only image.
        fresh = ("/dev/shm", "/tmp")  # noqa: S108 (the image's own, each a new tmpfs)
        private = " && ".join(f"mount -t tmpfs -o mode=1777 tmpfs {root}{path}" for path in fresh)
        setup = (
            f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && {private}"
            f' && exec chroot --userspec={uid}:{gid} --groups={gid} {root} "$@"'
        )
        inner = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in environment.items())]
        inner += ["/bin/sh", "-c", f'cd {workdir} && exec "$@"', "sh", *entrypoint, *args]
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", setup, "sh", *inner]


@contextlib.contextmanager
def mounted(image: str, config: dict) -> Iterator[Mounted]:
    root = Path(podman("image", "mount", image).stdout.strip())
    try:
        yield Mounted(root=root, config=config)
    finally:
        subprocess.run(["podman", "image", "unmount", image], capture_output=True)
