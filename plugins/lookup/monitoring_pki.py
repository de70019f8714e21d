# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``lookup('alteo.hostops.monitoring_pki', DIR, host=H, common_name=CN, sans=[...])``:
a host's monitoring certificate, key and CA (PEM texts) when the files that
``playbooks/tasks/monitoring-tls.yml`` makes are there and are what its tasks would
leave unchanged; an empty dict otherwise (the tasks then run and decide).

One check on the controller instead of eight tasks per host and play on a re-apply
(issue 20). It is stricter than community.crypto's own idempotence checks, never
looser: anything it does not recognise sends the run to the tasks."""

from __future__ import annotations

DOCUMENTATION = r"""
name: monitoring_pki
short_description: A host's monitoring certificate when it is already current
description:
  - Reads the monitoring CA and the host's key and certificate from the controller's
    monitoring secrets directory and returns them (keys C(ca), C(cert), C(key), PEM
    texts without their final newline, as the C(file) lookup reads them) when nothing
    would be changed by the tasks that make them (C(playbooks/tasks/monitoring-tls.yml));
    otherwise an empty dict.
  - Current means, as those tasks define it - the C(hosts) directory has mode 0700, the
    four files exist with mode 0600; the CA key is an EC P-384 key and the host key an
    EC P-256 key; the CA certificate is the CA key's, self-signed, subject
    C(CN=hostops monitoring CA), the same name as its one alternative name, basic
    constraints C(CA:TRUE) and key usage C(keyCertSign, cRLSign), both critical, and
    nothing else but its subject key identifier; the host certificate is the host key's,
    signed by the CA, with the given common name and exactly the given subject
    alternative names (in order), extended key usage C(serverAuth) and its key
    identifiers.
  - Timestamps are not compared (the tasks ignore them too, C(ignore_timestamps)).
options:
  _terms:
    description: The monitoring secrets directory.
    type: str
    required: true
  host:
    description: The inventory name (the files C(hosts/HOST.key) and C(hosts/HOST.crt)).
    type: str
    required: true
  common_name:
    description: The certificate's common name.
    type: str
    required: true
  sans:
    description: The subject alternative names, as C(DNS:name) or C(IP:address).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Hand the certificate to the roles when it is current
  ansible.builtin.set_fact:
    pki: >-
      {{ lookup('alteo.hostops.monitoring_pki', '/root/secrets', host=inventory_hostname,
                common_name='web01.example.com', sans=['DNS:web01.example.com']) }}
"""

RETURN = r"""
_raw:
  description: One dict with C(ca), C(cert) and C(key) (PEM texts), or an empty dict.
  type: list
  elements: dict
"""

import os
import stat
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

CA_NAME = "hostops monitoring CA"


def _mode_is(path: Path, mode: int) -> bool:
    return stat.S_IMODE(os.stat(path).st_mode) == mode


def _extensions(cert: Any, ignore: tuple[type, ...]) -> dict[Any, Any]:
    return {ext.oid: ext for ext in cert.extensions if not isinstance(ext.value, ignore)}


def current_pki(directory: str, host: str, common_name: str, sans: list[str]) -> dict[str, str]:
    """The PEM texts when every file is as the tasks would leave it, else {}."""
    try:
        return _current_pki(Path(directory), host, common_name, sans)
    except Exception:  # any doubt: the tasks decide
        return {}


def _current_pki(folder: Path, host: str, common_name: str, sans: list[str]) -> dict[str, str]:
    import ipaddress  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    paths = {
        "ca_key": folder / "ca.key",
        "ca": folder / "ca.crt",
        "key": folder / "hosts" / f"{host}.key",
        "cert": folder / "hosts" / f"{host}.crt",
    }
    if not _mode_is(folder / "hosts", 0o700):
        return {}
    if not all(_mode_is(path, 0o600) for path in paths.values()):
        return {}
    text = {name: path.read_text() for name, path in paths.items()}

    def ec_key(pem: str, curve: type) -> Any:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        return (
            key
            if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, curve)
            else None
        )

    def same_key(cert: Any, key: Any) -> bool:
        return bool(cert.public_key().public_numbers() == key.public_key().public_numbers())

    def ski_ok(cert: Any) -> bool:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return bool(
            ski.digest == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
        )

    ca_key = ec_key(text["ca_key"], ec.SECP384R1)
    key = ec_key(text["key"], ec.SECP256R1)
    if ca_key is None or key is None:
        return {}
    ca = x509.load_pem_x509_certificate(text["ca"].encode())
    cert = x509.load_pem_x509_certificate(text["cert"].encode())

    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    ca_expected = {
        # openssl_csr_pipe names the common name as the alternative name when none is given
        x509.SubjectAlternativeName.oid: x509.Extension(
            x509.SubjectAlternativeName.oid,
            False,
            x509.SubjectAlternativeName([x509.DNSName(CA_NAME)]),
        ),
        x509.BasicConstraints.oid: x509.Extension(
            x509.BasicConstraints.oid, True, x509.BasicConstraints(ca=True, path_length=None)
        ),
        x509.KeyUsage.oid: x509.Extension(
            x509.KeyUsage.oid,
            True,
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
        ),
    }
    if not (
        same_key(ca, ca_key)
        and ca.subject == ca_subject
        and ca.issuer == ca_subject
        and ski_ok(ca)
        and _extensions(ca, (x509.SubjectKeyIdentifier,)) == ca_expected
    ):
        return {}
    ca.verify_directly_issued_by(ca)  # raises when the self-signature is wrong

    names: list[x509.GeneralName] = []
    for san in sans:
        kind, _sep, value = san.partition(":")
        if kind == "DNS":
            names.append(x509.DNSName(value))
        elif kind == "IP":
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        else:
            return {}
    cert_expected = {
        x509.SubjectAlternativeName.oid: x509.Extension(
            x509.SubjectAlternativeName.oid, False, x509.SubjectAlternativeName(names)
        ),
        x509.ExtendedKeyUsage.oid: x509.Extension(
            x509.ExtendedKeyUsage.oid,
            False,
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        ),
    }
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    if not (
        same_key(cert, key)
        and cert.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        and cert.issuer == ca.subject
        and ski_ok(cert)
        and aki == x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
        and _extensions(cert, (x509.SubjectKeyIdentifier, x509.AuthorityKeyIdentifier))
        == cert_expected
    ):
        return {}
    cert.verify_directly_issued_by(ca)  # raises when the CA did not sign it
    # as the file lookup reads them (trailing white space stripped)
    return {"ca": text["ca"].rstrip(), "cert": text["cert"].rstrip(), "key": text["key"].rstrip()}


class LookupModule(LookupBase):  # type: ignore[misc]
    def run(self, terms: list[Any], variables: Any = None, **kwargs: Any) -> list[dict[str, str]]:
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError("monitoring_pki takes one directory")
        sans = [str(s) for s in self.get_option("sans")]
        return [
            current_pki(
                str(terms[0]),
                str(self.get_option("host")),
                str(self.get_option("common_name")),
                sans,
            )
        ]
