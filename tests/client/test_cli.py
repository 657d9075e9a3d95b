"""The CLI client as a customer runs it: `.venv/bin/grokgate` in a real terminal against a live gateway (login
with a hidden prompt, a video with its progress display, saved as a playable MP4), and in pipes (quiet, `--json`,
one-line errors). Each run costs seconds of start-up, so one scenario shares them."""

from __future__ import annotations

import asyncio
import io
import json
import stat
from pathlib import Path

import av
import pytest
from PIL import Image
from typer.testing import CliRunner

from grokgate.cli.common import app
from tests.client.terminal import GROKGATE, Terminal, client_env
from tests.conftest import Gateway, Sandbox


async def piped(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        GROKGATE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.timeout(120)
async def test_a_customer_session(gateway: Gateway, sandbox: Sandbox, tmp_path: Path) -> None:
    tenant = await gateway.tenant(credits=160)
    config = tmp_path / "config"
    logged_in = client_env(XDG_CONFIG_HOME=str(config))

    # Log in: the key is asked for without echo, checked against the gateway, saved for this user alone.
    async with Terminal("login", "--base-url", gateway.server.url, env=logged_in) as term:
        await term.expect("API key")
        await term.expect_hidden_input()
        term.type(tenant.key + "\n")
        assert await term.finish() == 0
    assert "logged in to" in term.text
    assert tenant.key not in term.text
    saved = config / "grokgate" / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {"apiKey": tenant.key, "baseUrl": gateway.server.url}

    # A video, on the saved login: state and elapsed time drawn while it runs, then a playable file.
    movie = tmp_path / "out.mp4"
    async with Terminal(
        "generate", "video", "neon alley [sandbox:delay=1.5]", "--duration", "1", "-o", str(movie), env=logged_in
    ) as term:
        assert await term.finish() == 0
    drawn = term.text
    assert "video job_" in drawn
    assert "pending" in drawn or "processing" in drawn
    assert "completed" in drawn
    assert "0:00:0" in drawn  # rich's elapsed-time column
    assert "\x1b[" in drawn  # redrawn in place
    assert str(movie) in drawn
    with av.open(str(movie)) as container:
        assert container.duration is not None
        assert container.duration / av.time_base > 0.5

    # In a pipe: no progress, one JSON object; a local file to edit travels as a data URI.
    source = tmp_path / "source.png"
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(buffer, "PNG")
    source.write_bytes(buffer.getvalue())
    (tmp_path / "images").mkdir()
    keyed = client_env(GROKGATE_API_KEY=tenant.key, GROKGATE_BASE_URL=gateway.server.url)
    code, out, err = await piped(
        "generate", "image", "greener", "--edit", str(source), "-o", str(tmp_path / "images"), "--json", env=keyed
    )
    assert (code, err) == (0, "")
    answer = json.loads(out)
    assert answer["creditsCharged"] == 8
    [written] = answer["files"]
    assert Path(written).parent == tmp_path / "images"
    assert Image.open(written).format == "PNG"
    [edit] = await sandbox.requests("/v1/images/edits")
    assert edit["body"]["image"]

    # Out of credits: one line with the status, the code and the numbers; no traceback, exit status 1.
    code, out, err = await piped("generate", "video", "too dear", env=keyed)
    assert (code, out) == (1, "")
    assert err == "grokgate: 402 INSUFFICIENT_CREDITS: 2 credits left, 150 needed\n"


async def test_jobs_and_balance_commands(gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same commands in-process (typer's runner, in a thread beside the gateway's loop), for the paths a
    subprocess each would make slow."""
    tenant = await gateway.tenant(credits=1000)
    monkeypatch.setenv("GROKGATE_API_KEY", tenant.key)
    monkeypatch.setenv("GROKGATE_BASE_URL", gateway.server.url)
    endless = (await gateway.generate(tenant, {"prompt": "endless [sandbox:never]", "duration": 1})).json()["jobId"]
    short = (await gateway.generate(tenant, {"prompt": "short", "duration": 1})).json()["jobId"]
    runner = CliRunner()

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            return 1, f"{type(result.exception).__name__}: {result.exception}"
        return result.exit_code, result.stdout

    async def run(*args: str) -> tuple[int, str]:
        return await asyncio.to_thread(cli, *args)

    code, out = await run("jobs", "wait", short, "--timeout", "30", "-o", str(tmp_path), "--json")
    assert code == 0, out
    waited = json.loads(out)
    assert waited["status"] == "completed"
    assert Path(waited["file"]).name == f"{short}.mp4"
    code, out = await run("jobs", "cancel", endless)
    assert (code, out) == (0, f"{endless}  cancelled  150 credits refunded\n")
    code, out = await run("jobs", "cancel", endless)
    assert (code, out) == (
        1,
        f"CliError: 409 JOB_NOT_CANCELLABLE: Job {endless} is cancelled and can no longer be cancelled",
    )
    code, out = await run("jobs", "show", endless, "--json")
    assert json.loads(out)["creditsRefunded"] == 150
    code, out = await run("jobs", "list", "--status", "cancelled")
    assert out.splitlines()[-1] == "1 of 1"
    assert out.startswith(f"{endless}  cancelled")
    code, out = await run("balance", "--json")
    assert json.loads(out)["creditsRemaining"] == 1000 - 150
    code, out = await run("ledger", "--json")
    assert [entry["kind"] for entry in json.loads(out)["entries"]] == ["refund", "charge", "charge", "grant"]
    code, out = await run("generate", "image", "x", "--edit", str(tmp_path / "missing.png"))
    assert (code, out) == (
        1,
        f"CliError: --edit: {tmp_path / 'missing.png'} is neither an http(s) URL nor a readable file",
    )
    # No key anywhere: said so, with what to do.
    monkeypatch.delenv("GROKGATE_API_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    code, out = await run("balance")
    assert (code, out) == (1, "CliError: no API key: set GROKGATE_API_KEY or run `grokgate login`")
