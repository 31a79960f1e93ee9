"""A self-signed HTTPS server on 127.0.0.1 that serves :data:`tests.media.PNG`."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import media

if TYPE_CHECKING:
    from pathlib import Path

PNG_PATH = "/img/png"


def make_self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write a self-signed certificate for ``host`` and its key; return (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _PngHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TLSHTTPServer

    def do_GET(self) -> None:
        self.server.record(self.path)
        if self.path != PNG_PATH:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(media.PNG)))
        self.end_headers()
        self.wfile.write(media.PNG)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _TLSHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PngHandler)
        self.requested: list[str] = []
        self._lock = threading.Lock()

    def record(self, path: str) -> None:
        with self._lock:
            self.requested.append(path)

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: clients that reject the certificate abort the handshake on purpose."""


class TLSServer:
    """Serves :data:`tests.media.PNG` at ``/img/png`` over HTTPS with a self-signed certificate.

    The TLS handshake happens in the handler thread (``do_handshake_on_connect=False`` on the
    listening socket, handshake on first read), so a client that refuses the certificate never
    blocks the accept loop.
    """

    def __init__(self, folder: Path) -> None:
        self.cert, self.key = make_self_signed(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        self.httpd = _TLSHTTPServer()
        self.httpd.socket = context.wrap_socket(
            self.httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def requested(self) -> list[str]:
        return self.httpd.requested

    def count(self, path: str) -> int:
        return self.requested.count(path)

    def __enter__(self) -> TLSServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
