"""`chorus-presence init`: prepares a fresh install, and is safe to run again on any install.

It creates the data directory and the database (applying migrations), and a self-signed
certificate when none is configured yet, then tells the operator what to do next.
"""

from __future__ import annotations

import argparse
import asyncio

from rich.markup import escape

from chorus_presence.certs import (
    CertificateError,
    certificate_fingerprint,
    ensure_certificate,
    is_self_signed,
)
from chorus_presence.cli.common import CliError, command_hint, console
from chorus_presence.config import Config
from chorus_presence.storage.database import Database


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
    database = config.storage.database
    database_existed = database.exists()
    version = asyncio.run(_migrate(config))
    if database_existed:
        _report("exists", f"database {database} (schema version {version})")
    else:
        _report("created", f"database {database}")

    try:
        created = ensure_certificate(config.tls.cert, config.tls.key, config.domain)
    except CertificateError as error:
        raise CliError(f"TLS certificate: {error}") from None
    if created:
        _report("created", f"self-signed certificate for {config.domain}: {config.tls.cert}")
        _report("created", f"private key {config.tls.key}")
    else:
        _report("exists", f"certificate {config.tls.cert}")
        _report("exists", f"private key {config.tls.key}")

    try:
        fingerprint = certificate_fingerprint(config.tls.cert)
        self_signed = is_self_signed(config.tls.cert)
    except ValueError as error:
        raise CliError(f"{config.tls.cert}: not a PEM certificate: {error}") from None
    console.print(f"\nCertificate SHA-256 fingerprint:\n  {fingerprint}", soft_wrap=True)
    if self_signed:
        console.print(
            "Clients will warn that this self-signed certificate is not trusted: accept it"
            " only if they show this fingerprint.",
            soft_wrap=True,
        )
    hint = escape(command_hint(args.config))
    console.print(f"\nAdd a user with:\n  {hint} user add alice", soft_wrap=True)
    return 0


async def _migrate(config: Config) -> int:
    db = await Database.open(config.storage.database)
    try:
        return await db.schema_version()
    finally:
        await db.close()


def _report(status: str, what: str) -> None:
    style = "green" if status == "created" else "dim"
    console.print(f"[{style}]{status:>7}[/{style}]  {escape(what)}", soft_wrap=True)
