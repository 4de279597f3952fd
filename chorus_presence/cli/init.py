"""`chorus-presence init`: prepares a fresh install, and is safe to run again on any install.

It creates the data directory and the database (applying migrations), and a self-signed
certificate when none is configured yet, then tells the operator what to do next.
"""

from __future__ import annotations

import argparse
import asyncio

from rich.markup import escape

from chorus_presence.cli.common import CliError, command_hint, console
from chorus_presence.config import Config
from chorus_presence.storage.factory import prepare


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "init",
        help="create the database and a self-signed certificate if missing",
        description="Create the data directory, the database and a self-signed TLS"
        " certificate where they do not exist yet. Running it again changes nothing but"
        " applying new schema migrations.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, config: Config) -> int:
    # Here, not at the top: every command line, `serve` too, imports this module to list the
    # commands, and only `init` needs the cryptography package (some 10 MB).
    from chorus_presence.certs import (
        FINGERPRINTS,
        CertificateError,
        certificate_fingerprint,
        ensure_certificate,
        is_self_signed,
    )

    prepared = asyncio.run(prepare(config.storage))
    _report("created" if prepared.created else "exists", prepared.description)

    try:
        created = ensure_certificate(config.tls.cert, config.tls.key, config.domain)
    except CertificateError as error:
        raise CliError(str(error)) from None
    if created:
        _report("created", f"self-signed certificate for {config.domain}: {config.tls.cert}")
        _report("created", f"private key {config.tls.key}")
    else:
        _report("exists", f"certificate {config.tls.cert}")
        _report("exists", f"private key {config.tls.key}")

    try:
        fingerprints = {
            name: certificate_fingerprint(config.tls.cert, name) for name in FINGERPRINTS
        }
        self_signed = is_self_signed(config.tls.cert)
    except ValueError as error:
        raise CliError(f"{config.tls.cert} is not a PEM certificate: {error}") from None
    console.print("\nCertificate fingerprints:", soft_wrap=True)
    label_width = max(len(name) for name in fingerprints)
    for name, fingerprint in fingerprints.items():
        console.print(f"  {name:<{label_width}}  {fingerprint}", soft_wrap=True)
    if self_signed:
        console.print(
            "Clients will warn that this self-signed certificate is not trusted: accept it"
            " only if they show one of these fingerprints (some show them in lower case,"
            " without colons).",
            soft_wrap=True,
        )
    hint = escape(command_hint(args.config))
    console.print(f"\nAdd a user with:\n  {hint} user add alice", soft_wrap=True)
    return 0


def _report(status: str, what: str) -> None:
    style = "green" if status == "created" else "dim"
    console.print(f"[{style}]{status:>7}[/{style}]  {escape(what)}", soft_wrap=True)
