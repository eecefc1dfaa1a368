"""The certificate and key that sign Content Credentials: read from the environment, checked,
and (outside production) a development pair made at run time.

An operator gives a certificate chain (the signing certificate first, then its intermediates)
and its private key, each as PEM text or as the path of a file holding it. Production refuses
to start without them, with a self-signed certificate, or with the development one: outputs
signed that way would claim an identity no reader can check.
"""

from __future__ import annotations

import datetime
import functools
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# What marks the development certificate (and nothing real): production refuses it.
DEV_ORGANIZATION = "Dream Pixel development"
DEV_UNIT = "Not for production"


class SigningCredentialsError(ValueError):
    """The certificate or key cannot sign Content Credentials; the message names the variable."""


def pem_value(value: str, *, name: str) -> bytes:
    """PEM text as given, or the contents of the file a path names. `\\n` escapes (how many
    .env files carry a multi-line value) become line breaks."""
    value = value.strip()
    if not value:
        return b""
    if value.startswith("-----BEGIN"):
        return value.replace("\\n", "\n").encode()
    path = Path(value)
    if not path.is_file():
        raise SigningCredentialsError(f"{name} is neither PEM text nor the path of a readable file: {value!r}")
    return path.read_bytes()


def certificate_chain(pem: bytes, *, name: str) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise SigningCredentialsError(f"{name} holds no PEM certificate.") from None
    return chain


def private_key(pem: bytes, *, name: str):
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise SigningCredentialsError(f"{name} holds no unencrypted PEM private key.") from None


def signing_algorithm(key) -> str:
    """The C2PA algorithm name for a private key: es256/es384/es512, ps256 or ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        bits = key.curve.key_size
        return {256: "es256", 384: "es384", 521: "es512"}.get(bits, "") or _unsupported(f"an EC key on {bits} bits")
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    return _unsupported(type(key).__name__)


def _unsupported(what: str) -> str:
    raise SigningCredentialsError(f"C2PA_SIGNING_KEY is {what}; use an EC (P-256), RSA or Ed25519 key.")


def is_dev_certificate(certificate: x509.Certificate) -> bool:
    names = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any(attribute.value == DEV_ORGANIZATION for attribute in names)


def _is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _matches(certificate: x509.Certificate, key) -> bool:
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    held = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public == held


def signing_credentials_problem(cert_value: str, key_value: str, *, production: bool) -> str | None:
    """What is wrong with the configured pair, in a sentence for the operator; None if it can sign."""
    try:
        cert_pem = pem_value(cert_value, name="C2PA_SIGNING_CERT")
        key_pem = pem_value(key_value, name="C2PA_SIGNING_KEY")
        if not cert_pem or not key_pem:
            if not production:
                return None  # development signs with a pair of its own (dev_signing_credentials)
            missing = "C2PA_SIGNING_CERT" if not cert_pem else "C2PA_SIGNING_KEY"
            return (
                f"{missing} is not set: production signs every result with Content Credentials, which needs "
                "a certificate chain and its private key (docs/deployment.md, Content Credentials)."
            )
        chain = certificate_chain(cert_pem, name="C2PA_SIGNING_CERT")
        key = private_key(key_pem, name="C2PA_SIGNING_KEY")
        signing_algorithm(key)
    except SigningCredentialsError as error:
        return str(error)
    leaf = chain[0]
    if not _matches(leaf, key):
        return "C2PA_SIGNING_KEY is not the private key of the first certificate in C2PA_SIGNING_CERT."
    if leaf.not_valid_after_utc < datetime.datetime.now(datetime.UTC):
        return f"The C2PA signing certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}."
    if production and is_dev_certificate(leaf):
        return (
            "C2PA_SIGNING_CERT is the development certificate, which production refuses: use one issued for the site."
        )
    if production and _is_self_signed(leaf):
        return (
            "C2PA_SIGNING_CERT is self-signed, which production refuses: readers could not tell who signed. "
            "Use a certificate issued by a certificate authority (docs/deployment.md)."
        )
    return None


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEV_UNIT),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, certificates: bool) -> x509.KeyUsage:
    # A root signs certificates only; the signing certificate signs documents only.
    flags = dict.fromkeys(
        [
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    return x509.KeyUsage(digital_signature=not certificates, key_cert_sign=certificates, crl_sign=certificates, **flags)


def certificate_pair(*, organization: str = DEV_ORGANIZATION, days: int = 365) -> tuple[bytes, bytes, bytes]:
    """A root and a signing certificate issued by it (EC P-256): the chain (leaf then root), the
    leaf's private key and the root alone (what a reader trusts), all PEM. What C2PA readers
    accept: the leaf is no CA, may sign, and is meant for documents."""
    now = datetime.datetime.now(datetime.UTC)

    def name(common_name: str) -> x509.Name:
        if organization == DEV_ORGANIZATION:
            return _name(common_name)
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(name(f"{organization} root"))
        .issuer_name(name(f"{organization} root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(f"{organization} Content Credentials"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + root.public_bytes(pem)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, key_pem, root.public_bytes(pem)


@functools.cache
def dev_signing_credentials() -> tuple[bytes, bytes, bytes]:
    """Development and tests: a pair made once per process, marked as the development one."""
    return certificate_pair()
