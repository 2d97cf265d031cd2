"""The MLLP listener in-process on a free port, driven by python-hl7's asyncio MLLP client."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hl7.mllp import open_hl7_connection

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v2.intake.batcher import BatchingIntake
from rhip.exchange.hl7v2.pipeline import V2Pipeline
from rhip.exchange.mllp import MllpConfig, MllpServer, start_mllp
from rhip.exchange.mllp.client import MllpClient, ack_summary, client_tls
from rhip.exchange.mllp.framing import wrap
from rhip.exchange.rejects import RejectStore

from .conftest import search
from .messages import MRN_SYSTEM, adt, msh

pytestmark = pytest.mark.integration


@asynccontextmanager
async def listening(pipeline: V2Pipeline, **options: Any) -> AsyncIterator[MllpServer]:
    intake = BatchingIntake(pipeline, linger_s=0.002, batch_max=16)
    server = await start_mllp(MllpConfig(port=0, **options), intake)
    try:
        yield server
    finally:
        await server.stop()
        await intake.close()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


async def exchange(port: int, *payloads: bytes) -> list[bytes]:
    """Send each payload as a block on one connection and read one ACK block after each."""
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    acks = []
    try:
        for payload in payloads:
            writer.writeblock(payload)
            await writer.drain()
            acks.append(await reader.readblock())
    finally:
        writer.close()
        await writer.wait_closed()
    return acks


def codes(acks: list[bytes]) -> list[str]:
    return [ack_summary(a)[0] for a in acks]


def test_aa_after_commit_then_the_same_ack_for_a_retransmission(
    pipeline: V2Pipeline, platform: Platform
) -> None:
    async def scenario() -> None:
        async with listening(pipeline) as server:
            first, again = await exchange(server.port, adt("C1", "M1").encode(), adt("C1", "M1").encode())
            assert ack_summary(first)[:2] == ("AA", "C1")
            assert again == first
            # a new connection, the same answer
            assert await exchange(server.port, adt("C1", "M1").encode()) == [first]

    run(scenario)
    assert len(search(platform, "Patient", f"identifier={MRN_SYSTEM}|M1")) == 1
    assert len(search(platform, "MessageHeader")) == 1


def test_a_malformed_frame_gets_an_ar_and_the_connection_stays_up(pipeline: V2Pipeline) -> None:
    async def scenario() -> None:
        async with listening(pipeline, max_message_kb=4) as server:
            reader, writer = await open_hl7_connection("127.0.0.1", server.port)
            # garbage, then a frame cut off by the next start block, then a whole message
            writer.write(b"\r\n\x00junk\x0b" + msh("T1", "ADT^A04")[:30].encode())
            writer.writeblock(adt("T2", "M2").encode())
            await writer.drain()
            cut, good = await reader.readblock(), await reader.readblock()
            assert ack_summary(cut)[0] == "AR" and ack_summary(good)[:2] == ("AA", "T2")
            # a frame over the limit: AR naming its control id, then the connection still works
            writer.writeblock(adt("T3", "M3").encode() + b"OBX|1|ST|X||" + b"x" * 6000 + b"\r")
            writer.writeblock(b"not hl7 at all")
            writer.writeblock(adt("T4", "M4").encode())
            await writer.drain()
            answers = [ack_summary(await reader.readblock()) for _ in range(3)]
            assert [a[:2] for a in answers] == [("AR", "T3"), ("AR", ""), ("AA", "T4")]
            writer.close()
            await writer.wait_closed()

    run(scenario)


def test_a_bad_message_then_a_good_one_on_one_connection(pipeline: V2Pipeline, rejects: RejectStore) -> None:
    async def scenario() -> None:
        async with listening(pipeline) as server:
            acks = await exchange(
                server.port,
                adt("B1", "").encode(),  # PID-3 without an MRN
                (msh("B2", "ZZZ^Z01") + "PID|1\r").encode(),
                adt("B3", "M3").encode(),
            )
            assert codes(acks) == ["AE", "AR", "AA"]
            assert "PID" in ack_summary(acks[0])[2] or acks[0].count(b"ERR|") == 1

    run(scenario)
    assert sorted(r.control_id for r in rejects.list()) == ["B1", "B2"]


def test_a_refusal_that_cannot_be_kept_gets_no_ack_and_the_connection_closes(platform: Platform) -> None:
    class FailingRejects(RejectStore):
        def record(self, **kwargs: Any) -> int:
            raise ConnectionError("database unavailable")

    pipeline = V2Pipeline(platform.fhir, FailingRejects(platform.db))

    async def scenario() -> None:
        async with listening(pipeline) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(wrap(adt("W2", "").encode()) + wrap(adt("W3", "M3").encode()))
            await writer.drain()
            # no AE for a message kept nowhere (nor for the one after it): the sender must send them again
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
            await writer.wait_closed()

    run(scenario)


@pytest.mark.parametrize("msh18", ["GB 18030-2000", None])
def test_gbk_with_and_without_msh18(pipeline: V2Pipeline, platform: Platform, msh18: str | None) -> None:
    async def scenario() -> None:
        async with listening(pipeline) as server:
            raw = adt("G1", "M9", name="乗亅^乛亊", charset=msh18).encode("gbk")
            (ack,) = await exchange(server.port, raw)
            assert ack_summary(ack)[0] == "AA"
            assert "卫宁HIS".encode("gbk") in ack

    run(scenario)
    assert search(platform, "Patient", f"identifier={MRN_SYSTEM}|M9")[0]["name"][0]["family"] == "乗亅"


def test_gbk_by_connection_setting(platform: Platform, rejects: RejectStore) -> None:
    from rhip.exchange.hl7v2.intake.decoding import CharsetRules
    from rhip.exchange.hl7v2.pipeline import PipelineConfig

    pipeline = V2Pipeline(
        platform.fhir, rejects, PipelineConfig(charsets=CharsetRules(by_sender={"127.0.0.1": "GBK"}))
    )

    async def scenario() -> None:
        async with listening(pipeline) as server:
            (ack,) = await exchange(server.port, adt("G2", "M10", name="王^五", charset=None).encode("gbk"))
            assert ack_summary(ack)[0] == "AA"

    run(scenario)
    assert search(platform, "Patient", f"identifier={MRN_SYSTEM}|M10")[0]["name"][0]["family"] == "王"


def test_eight_connections_at_once(pipeline: V2Pipeline, platform: Platform) -> None:
    per_connection = 6

    async def sender(port: int, k: int) -> list[str]:
        # each connection sends its own patients' visits, and one patient shared by every connection
        payloads = [adt(f"K{k}-{i}", f"P{k}-{i % 3}", id_card="").encode() for i in range(per_connection)]
        payloads.append(adt(f"K{k}-shared", "SHARED", id_card="").encode())
        return codes(await exchange(port, *payloads))

    async def scenario() -> None:
        async with listening(pipeline) as server:
            results = await asyncio.gather(*(sender(server.port, k) for k in range(8)))
            assert all(r == ["AA"] * (per_connection + 1) for r in results)

    run(scenario)
    assert len(search(platform, "Patient")) == 8 * 3 + 1
    assert len(search(platform, "MessageHeader")) == 8 * (per_connection + 1)
    assert len(search(platform, "Organization")) == 1


def test_unsupported_type_is_rejected(pipeline: V2Pipeline) -> None:
    async def scenario() -> None:
        async with listening(pipeline) as server:
            (ack,) = await exchange(server.port, (msh("U1", "QRY^Q01") + "QRD|1\r").encode())
            code, control, text = ack_summary(ack)
            assert (code, control) == ("AR", "U1") and "QRY^Q01" in text

    run(scenario)


def test_an_idle_connection_is_closed(pipeline: V2Pipeline) -> None:
    async def scenario() -> None:
        async with listening(pipeline, idle_timeout_s=0.2) as server:
            reader, writer = await open_hl7_connection("127.0.0.1", server.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            writer.close()

    run(scenario)


def test_stop_lets_the_message_in_flight_finish(pipeline: V2Pipeline, platform: Platform) -> None:
    async def scenario() -> None:
        intake = BatchingIntake(pipeline, linger_s=0.05)
        server = await start_mllp(MllpConfig(port=0), intake)
        client = await MllpClient.connect("127.0.0.1", server.port)
        idle = await MllpClient.connect("127.0.0.1", server.port)
        sending = asyncio.ensure_future(client.send(adt("S1", "M1").encode()))
        await asyncio.sleep(0.01)  # the message is in the intake's linger
        await server.stop()
        assert ack_summary(await sending)[0] == "AA"
        with pytest.raises((ConnectionError, OSError)):
            await idle.send(adt("S2", "M2").encode(), timeout=5)
        await intake.close()
        await client.close()
        await idle.close()

    run(scenario)
    assert len(search(platform, "Patient", f"identifier={MRN_SYSTEM}|M2")) == 0


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls(pipeline: V2Pipeline, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)

    async def scenario() -> None:
        async with listening(pipeline, tls_cert=str(cert), tls_key=str(key)) as server:
            context = ssl.create_default_context(cafile=str(cert))
            reader, writer = await open_hl7_connection("127.0.0.1", server.port, ssl=context)
            writer.writeblock(adt("L1", "M1").encode())
            await writer.drain()
            assert ack_summary(await reader.readblock())[:2] == ("AA", "L1")
            writer.close()
            # plain TCP to a TLS port gets no acknowledgement
            plain = await MllpClient.connect("127.0.0.1", server.port)
            with pytest.raises((ConnectionError, OSError, asyncio.TimeoutError)):
                await plain.send(adt("L2", "M2").encode(), timeout=5)
            await plain.close()

    run(scenario)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_with_client_certificates(pipeline: V2Pipeline, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)  # self-signed: its own CA, for the server and the client alike

    async def scenario() -> None:
        async with listening(
            pipeline, tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(cert)
        ) as server:
            with_cert = client_tls(str(cert), str(cert), str(key))
            client = await MllpClient.connect(
                "127.0.0.1", server.port, tls=with_cert, server_hostname="localhost"
            )
            assert ack_summary(await client.send(adt("L3", "M3").encode()))[:2] == ("AA", "L3")
            await client.close()
            without = await MllpClient.connect(
                "127.0.0.1", server.port, tls=client_tls(str(cert)), server_hostname="localhost"
            )
            with pytest.raises((ConnectionError, OSError, ssl.SSLError, asyncio.TimeoutError)):
                await without.send(adt("L4", "M4").encode(), timeout=5)
            await without.close()

    run(scenario)
