"""Helpers for connection tests: both event loops, throwaway TLS certificates."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import queue
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from oddswire.sim._base import run_loop

LOOPS = ["asyncio", "uvloop"]


def run(loop_kind: str, main: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    async def guarded() -> Any:
        return await asyncio.wait_for(main(), timeout)
    return run_loop(loop_kind, guarded())


async def wait_until(pred: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)


def make_certs(d: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(k: Any, path: Path) -> None:
        path.write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("oddswire test CA"))
          .issuer_name(name("oddswire test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    out = {"ca": d / "ca.crt"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for who, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH),
                       ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (x509.CertificateBuilder().subject_name(name(f"oddswire test {who}"))
             .issuer_name(ca.subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if who == "server":
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        out[who] = d / f"{who}.crt"
        out[who].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{who}_key"] = d / f"{who}.key"
        write_key(key, out[f"{who}_key"])
    return out


def server_context(certs: dict[str, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs["ca"]))
    ctx.load_cert_chain(str(certs["server"]), str(certs["server_key"]))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@contextlib.contextmanager
def server_thread(make: Callable[[], Any]) -> Iterator[Any]:
    """Run a simulator (an async context manager made by ``make()``) on its own event loop
    in a thread, as a real server is: a client that blocks its loop does not slow the
    server down. Yields the entered simulator; the thread ends on exit."""
    ready: queue.Queue[Any] = queue.Queue()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        try:
            async with make() as sim:
                ready.put(sim)
                await stop.wait()
        except BaseException as e:
            ready.put(e)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    got = ready.get(timeout=10)
    if isinstance(got, BaseException):
        raise got
    try:
        yield got
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
