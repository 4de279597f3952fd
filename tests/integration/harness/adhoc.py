"""XEP-0050 ad-hoc commands driven as a stock client drives them: execute a command, read its
form, fill it in and complete it. The clients need the xep_0050 plugin (`ADHOC` for `online`).
"""

from __future__ import annotations

from typing import Any

import slixmpp

from tests.integration.harness.constants import DOMAIN, TIMEOUT

COMMANDS = "http://jabber.org/protocol/commands"
ADHOC = ("xep_0050",)


async def execute(client: slixmpp.ClientXMPP, node: str) -> Any:
    """Execute a command; returns the command payload with its form, checked as XEP-0050 says."""
    result = await client.plugin["xep_0050"].send_command(DOMAIN, node, timeout=TIMEOUT)
    command = result["command"]
    assert command["node"] == node
    assert command["status"] == "executing"
    assert command["sessionid"]
    assert command["actions"] == {"complete"}
    assert command.xml.find(f"{{{COMMANDS}}}actions").get("execute") == "complete"
    assert command["form"]["type"] == "form"
    return command


async def complete(client: slixmpp.ClientXMPP, command: Any, values: dict[str, Any]) -> Any:
    """Fill in the form a command showed and submit it, as a client's Finish button does."""
    form = command["form"]
    form.set_values(values)
    form["type"] = "submit"
    result = await client.plugin["xep_0050"].send_command(
        DOMAIN,
        command["node"],
        action="complete",
        payload=form,
        sessionid=command["sessionid"],
        timeout=TIMEOUT,
    )
    done = result["command"]
    assert done["status"] == "completed"
    assert done["sessionid"] == command["sessionid"]
    [(note_type, note)] = done["notes"]
    assert note_type == "info"
    return note


def fields(command: Any) -> dict[str, Any]:
    return command["form"].get_fields()


def options(field: Any) -> dict[str, str]:
    return {option["value"]: option["label"] for option in field["options"]}
