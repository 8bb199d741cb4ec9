"""TLS and the password through the real commands: serve, send and chat."""

from __future__ import annotations

import socket

from tests.support import (
    IMKIT,
    InteractiveProcess,
    imkit_env,
    run_imkit,
    split_addr,
    start_server_process,
)


def test_tls_serve_send_and_chat(tls_files: dict[str, str]) -> None:
    server = start_server_process(
        "--idle-timeout", "0", "--tls-cert", tls_files["cert"], "--tls-key", tls_files["key"]
    )
    try:
        _, port = split_addr(server.address)
        where = ["--host", "localhost", "--port", str(port)]
        chat = InteractiveProcess(
            [*IMKIT, "chat", *where, "--tls", "--cafile", tls_files["ca"], "--name", "reader"]
        )
        chat.expect("^you are now reader$")
        result = run_imkit(
            "send", *where, "--cafile", tls_files["ca"], "--to", "reader", "secure hello"
        )
        assert (result.returncode, result.stderr) == (0, "")
        chat.expect(r"^\S+ \(private\): secure hello$")
        chat.send("0")
        assert chat.finish() == (0, "")

        untrusted = run_imkit("send", *where, "--tls", "hello")
        assert untrusted.returncode == 3
        assert untrusted.stderr.startswith(
            f"Error: TLS certificate of localhost:{port} not trusted"
        )
        assert untrusted.stderr.count("\n") == 1

        plaintext = run_imkit("send", *where, "--timeout", "3", "hello")  # no --tls
        assert plaintext.returncode == 3
        assert plaintext.stderr.count("\n") == 1 and "Traceback" not in plaintext.stderr
    finally:
        server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()


def test_bad_tls_files_are_one_line_errors(tls_files: dict[str, str]) -> None:
    missing = run_imkit(
        "serve", "--port", "0", "--tls-cert", "/nonexistent.pem", "--tls-key", tls_files["key"]
    )
    assert missing.returncode == 1
    assert missing.stderr == "Error: cannot read TLS file /nonexistent.pem: no such file\n"
    swapped = run_imkit(
        "serve", "--port", "0", "--tls-cert", tls_files["key"], "--tls-key", tls_files["ca"]
    )
    assert swapped.returncode == 1
    assert swapped.stderr.startswith("Error: cannot load the TLS certificate")
    assert swapped.stderr.count("\n") == 1
    alone = run_imkit("serve", "--port", "0", "--tls-cert", tls_files["cert"])
    assert alone.returncode == 2
    assert "--tls-cert and --tls-key go together" in alone.stderr


def test_password_from_the_environment_never_logged() -> None:
    secret = "correct-horse-battery"
    server = start_server_process(
        "--idle-timeout", "0", "--log-level", "debug", env=imkit_env(IMKIT_PASSWORD=secret)
    )
    try:
        _, port = split_addr(server.address)
        where = ["--port", str(port)]
        ok = run_imkit("send", *where, "hello", env=imkit_env(IMKIT_PASSWORD=secret))
        assert (ok.returncode, ok.stderr) == (0, "")
        wrong = run_imkit("send", *where, "--password", "incorrect-guess", "hello")
        assert (wrong.returncode, wrong.stderr) == (1, "Error: wrong password\n")
        missing = run_imkit("send", *where, "hello")
        assert (missing.returncode, missing.stderr) == (1, "Error: a password is required\n")
        chat = run_imkit("chat", *where, "--password", secret, stdin="4\n0\n")
        assert chat.returncode == 0 and "online (1):" in chat.stdout
    finally:
        server.stop()
    log = server.stderr()
    assert secret not in log and "incorrect-guess" not in log
    assert "refused: wrong password" in log


def test_failed_handshakes_never_disturb_other_connections(tls_files: dict[str, str]) -> None:
    # Regression: a failed handshake once closed a descriptor twice, and the number,
    # reused by the next accepted client, took the accept loop down with it.
    server = start_server_process(
        "--idle-timeout", "0", "--tls-cert", tls_files["cert"], "--tls-key", tls_files["key"]
    )
    try:
        host, port = split_addr(server.address)
        for round_ in range(5):
            for _ in range(10):
                with socket.create_connection((host, port)) as junk:
                    junk.sendall(b"not TLS at all, just a line like netcat would send\n")
            result = run_imkit(
                "send",
                "--host",
                "localhost",
                "--port",
                str(port),
                "--cafile",
                tls_files["ca"],
                f"round {round_}",
            )
            assert (result.returncode, result.stderr) == (0, "")
        assert server.proc.poll() is None
    finally:
        server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()
