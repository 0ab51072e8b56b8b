"""Credentials for a deployment on one machine (`deploy-local.sh`) or a first try on three:
a certificate authority, the SuperLink's TLS certificate for the names it is reached by, and one
EC P-384 key pair per site in OpenSSH format (SuperNode authentication: the SuperLink admits a
node only after `flwr supernode register` has recorded its public key).

    python -m medfocus_fl.credentials OUT_DIR --hosts 127.0.0.1,localhost --sites a,b,c

Made for trying things: a hospital's deployment takes its certificates from its own CA and keeps
each site's private key on that site's machine only.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_tls(out: Path, hosts: list[str], days: int = 30) -> None:
    """`ca.crt` (and its key) and `server.pem`/`server.key` valid for `hosts`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("MedFocus federated CA"))
        .issuer_name(_name("MedFocus federated CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_key = ec.generate_private_key(ec.SECP384R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    _write(out / "ca.crt", ca.public_bytes(pem))
    _write(out / "ca.key", ca_key.private_bytes(pem, pkcs8, none), private=True)
    _write(out / "server.pem", server.public_bytes(pem))
    _write(out / "server.key", server_key.private_bytes(pem, pkcs8, none), private=True)


def make_site_key(out: Path, site: str) -> None:
    """`<site>.key` (OpenSSH private key) and `<site>.pub` (what the SuperLink registers)."""
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    _write(out / f"{site}.key", private, private=True)
    _write(out / f"{site}.pub", public + f" medfocus-site-{site}\n".encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--hosts", default="127.0.0.1,localhost")
    parser.add_argument("--sites", default="")
    parser.add_argument("--no-tls", action="store_true", help="site keys only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_tls:
        make_tls(args.out, [host for host in args.hosts.split(",") if host])
    for site in [site for site in args.sites.split(",") if site]:
        make_site_key(args.out, site)


if __name__ == "__main__":
    main()
