// Settings -> Presence (automation, visibility policy, the three lists) and Settings -> Devices
// (devices, the routing switch, the default device and the device for each presence).

import {
  DEVICE_KINDS,
  ROUTING_STATES,
  changeVisibility,
  getRoute,
  getRouting,
  kindLabel,
  setRouting,
  setVisibility,
} from "./chorus.js";
import { $, announce, flash, h, who } from "./dom.js";

const MAX_DEVICES = 32;

export class PresenceSettings {
  constructor(session) {
    this.session = session;
    this.form = $("#visibility-form");
    // Refreshes triggered by other people must not undo what the user is editing.
    this.dirty = false;
    this.form.addEventListener("change", () => {
      this.dirty = true;
      flash($("#visibility-result"), "");
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#save();
    });
    session.addEventListener("visibility", () => this.render());
    session.addEventListener("names", () => this.render());
    session.addEventListener("roster", () => this.render());
    session.addEventListener("pending-count", () => this.#showPendingCount());
    const exception = $("#exception-form");
    // Enter alone must not pick Allow or Block for the user.
    exception.addEventListener("submit", (event) => event.preventDefault());
    for (const button of exception.querySelectorAll("[data-action]")) {
      button.addEventListener("click", () => this.#except(button, button.dataset.action));
    }
  }

  render() {
    const visibility = this.session.visibility;
    if (!this.dirty) {
      $("#away-when-offline").checked = visibility.awayWhenOffline;
      for (const radio of this.form.elements.policy) radio.checked = radio.value === visibility.policy;
    }
    this.#showPendingCount();
    $("#allowed-count").textContent = String(visibility.allowed.length);
    $("#blocked-count").textContent = String(visibility.blocked.length);
    this.#list(
      "pending-list",
      visibility.pending.map(({ jid, status }) => ({ jid, note: status })),
      [
        ["Accept", "accept", "accepted: they can now see your presence status"],
        ["Block", "block", "blocked from seeing your presence status (messages still reach you)"],
      ],
    );
    this.#list(
      "allowed-list",
      visibility.allowed.map((jid) => ({ jid })),
      [["Block", "block", "blocked from seeing your presence status (messages still reach you)"]],
    );
    this.#list(
      "blocked-list",
      visibility.blocked.map((jid) => ({ jid })),
      [["Allow", "allow", "moved to the allowed list"]],
    );
  }

  #showPendingCount() {
    const pending = this.session.pendingCount;
    const count = $("#pending-count");
    count.textContent = String(pending);
    count.setAttribute("aria-label", `${pending} ${pending === 1 ? "request" : "requests"}`);
    count.classList.toggle("badge-quiet", pending === 0);
  }

  #list(id, entries, actions) {
    const list = $(`#${id}`);
    const focused = document.activeElement;
    const refocus = list.contains(focused) ? focused.dataset.key : null;
    list.replaceChildren(
      ...entries.map(({ jid, note }) =>
        h(
          "li",
          { class: "person", dataset: { jid } },
          h(
            "div",
            { class: "person-main" },
            who(this.session.knownName(jid), jid),
            note ? h("span", { class: "person-note" }, `“${note}”`) : null,
          ),
          h(
            "div",
            { class: "row-actions" },
            actions.map(([label, action, outcome]) =>
              h(
                "button",
                {
                  type: "button",
                  class: `button small${action === "block" ? " quiet" : ""}`,
                  "aria-label": `${label} ${jid}`,
                  dataset: { key: `${action} ${jid}` },
                  onclick: (event) => this.#act(event.currentTarget, action, jid, outcome),
                },
                label,
              ),
            ),
          ),
        ),
      ),
    );
    $(`[data-empty-for="${id}"]`).hidden = entries.length > 0;
    if (refocus) {
      const again = list.querySelector(`[data-key="${CSS.escape(refocus)}"]`);
      (again || list.closest("details").querySelector("summary")).focus();
    }
  }

  async #act(button, action, jid, outcome) {
    button.disabled = true;
    const result = $("#lists-result");
    try {
      await changeVisibility(this.session.client, action, jid);
      flash(result, `${jid} ${outcome}.`);
      // Focus would vanish with the row; the list's heading is the nearest stable place.
      button.closest("details").querySelector("summary").focus();
    } catch (error) {
      flash(result, `Could not change ${jid}: ${error.message}`, "error");
      button.disabled = false;
    }
    await this.session.refreshVisibility().catch(() => {});
  }

  /** Allows or blocks someone by the address typed; the server says who may be listed. */
  async #except(button, action) {
    const input = $("#exception-jid");
    const result = $("#exception-result");
    const jid = input.value.trim();
    if (!jid) {
      flash(result, "Enter the address of the person to allow or block.", "error");
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      await changeVisibility(this.session.client, action, jid);
      flash(
        result,
        action === "allow"
          ? `Allowed ${jid} to see your presence status.`
          : `Blocked ${jid} from seeing your presence status (messages still reach you).`,
      );
      input.value = "";
    } catch (error) {
      flash(result, `Could not ${action} ${jid}: ${error.message}`, "error");
      input.focus();
    } finally {
      button.disabled = false;
    }
    await this.session.refreshVisibility().catch(() => {});
  }

  async #save() {
    const result = $("#visibility-result");
    const policy = [...this.form.elements.policy].find((radio) => radio.checked)?.value;
    try {
      this.session.visibility = await setVisibility(this.session.client, {
        policy,
        awayWhenOffline: $("#away-when-offline").checked,
      });
      this.session.pendingCount = this.session.visibility.pending.length;
      this.dirty = false;
      this.session.emit("visibility");
      flash(result, "Saved.");
    } catch (error) {
      flash(result, `Not saved: ${error.message}`, "error");
    }
  }
}

export class DeviceSettings {
  constructor(session) {
    this.session = session;
    this.config = null;
    this.dirty = false;
    for (const kind of DEVICE_KINDS) $("#device-kind").append(h("option", { value: kind.id }, kind.label));
    $("#add-device").addEventListener("click", () => this.#addDevice());
    $("#device-name").addEventListener("keydown", (event) => {
      // Enter in the name field adds the device rather than saving the whole form.
      if (event.key === "Enter") {
        event.preventDefault();
        this.#addDevice();
      }
    });
    $("#default-device").addEventListener("change", (event) => {
      this.config.defaultDevice = event.target.value;
      this.#changed();
    });
    $("#routing-enabled").addEventListener("change", (event) => {
      this.config.enabled = event.target.checked;
      this.#changed();
    });
    $("#devices-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#save();
    });
  }

  /** Loads the saved configuration, unless there are unsaved edits to keep. */
  async show() {
    if (this.config && this.dirty) return;
    try {
      this.config = await getRouting(this.session.client);
      this.dirty = false;
      this.render();
      await this.#showRoute();
    } catch (error) {
      flash($("#devices-result"), `Could not load your devices: ${error.message}`, "error");
    }
  }

  render() {
    const { devices, defaultDevice, enabled, map } = this.config;
    $("#device-rows").replaceChildren(
      ...devices.map((device) =>
        h(
          "tr",
          { dataset: { device: device.name } },
          h("td", {}, device.name),
          h("td", {}, kindLabel(device.kind)),
          h(
            "td",
            { class: "cell-actions" },
            h(
              "button",
              {
                type: "button",
                class: "button small quiet",
                "aria-label": `Remove device ${device.name}`,
                onclick: () => this.#removeDevice(device.name),
              },
              "Remove",
            ),
          ),
        ),
      ),
    );
    $("#devices-empty").hidden = devices.length > 0;
    const options = (emptyLabel, selected) => [
      h("option", { value: "" }, emptyLabel),
      ...devices.map((device) =>
        h(
          "option",
          { value: device.name, selected: device.name === selected },
          // The kind only adds something when the name does not already say it.
          device.name === kindLabel(device.kind)
            ? device.name
            : `${device.name} (${kindLabel(device.kind)})`,
        ),
      ),
    ];
    $("#default-device").replaceChildren(...options("No default device", defaultDevice));
    $("#default-device").value = defaultDevice || "";
    $("#routing-enabled").checked = enabled;
    $("#routing-rows").replaceChildren(
      ...ROUTING_STATES.map((state) => {
        const select = h(
          "select",
          { id: `route-${state.id}`, dataset: { state: state.id } },
          options("Choose a device", map[state.id]),
        );
        select.value = map[state.id] || "";
        select.addEventListener("change", () => {
          if (select.value) this.config.map[state.id] = select.value;
          else delete this.config.map[state.id];
          this.#changed();
        });
        return h(
          "tr",
          {},
          h("th", { scope: "row" }, h("label", { for: `route-${state.id}` }, state.label)),
          h("td", {}, select),
        );
      }),
    );
    $("#routing-rows").closest("table").classList.toggle("inactive", !enabled);
  }

  #changed() {
    this.dirty = true;
    flash($("#devices-result"), "Unsaved changes.", "pending");
  }

  #addDevice() {
    const nameInput = $("#device-name");
    const error = $("#device-error");
    const name = nameInput.value.trim();
    error.textContent = "";
    if (!name) {
      error.textContent = "Give the device a name.";
    } else if (name.length > 64) {
      error.textContent = "Device names are at most 64 characters.";
    } else if (this.config.devices.some((device) => device.name === name)) {
      error.textContent = `You already have a device named ${name}.`;
    } else if (this.config.devices.length >= MAX_DEVICES) {
      error.textContent = `You can have at most ${MAX_DEVICES} devices.`;
    }
    if (error.textContent) {
      nameInput.focus();
      return;
    }
    this.config.devices.push({ name, kind: $("#device-kind").value });
    nameInput.value = "";
    this.render();
    this.#changed();
    announce(`Device ${name} added. Save to keep it.`);
    nameInput.focus();
  }

  #removeDevice(name) {
    const config = this.config;
    config.devices = config.devices.filter((device) => device.name !== name);
    // The server refuses a default or mapping that names a device that is gone.
    if (config.defaultDevice === name) config.defaultDevice = "";
    for (const [state, device] of Object.entries(config.map)) {
      if (device === name) delete config.map[state];
    }
    this.render();
    this.#changed();
    announce(`Device ${name} removed. Save to keep the change.`);
    $("#device-name").focus();
  }

  async #save() {
    const result = $("#devices-result");
    try {
      await setRouting(this.session.client, this.config);
      this.dirty = false;
      this.config = await getRouting(this.session.client);
      this.render();
      flash(result, "Saved.");
      await this.#showRoute();
    } catch (error) {
      flash(result, `Not saved: ${error.message}`, "error");
    }
  }

  async #showRoute() {
    const note = $("#route-now");
    try {
      const route = await getRoute(this.session.client);
      note.textContent = route.device
        ? `Calls to you ring ${route.device} right now.`
        : "No device rings for calls to you right now.";
    } catch {
      note.textContent = "";
    }
  }

  presenceChanged() {
    if (this.config) this.#showRoute();
  }
}

/** Settings -> Profile: the user's own display name, set with vCard4 as any client would. */
export class ProfileSettings {
  constructor(session) {
    this.session = session;
    this.input = $("#own-name");
    this.dirty = false;
    this.input.addEventListener("input", () => {
      this.dirty = true;
      flash($("#own-name-result"), "");
    });
    $("#name-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#save();
    });
    session.addEventListener("names", () => this.show());
  }

  show() {
    if (!this.dirty) this.input.value = this.session.names.get(this.session.bare) || "";
  }

  async #save() {
    const result = $("#own-name-result");
    const name = this.input.value.trim();
    try {
      await this.session.setOwnName(name);
      this.dirty = false;
      this.input.value = name;
      flash(result, name ? "Saved." : "Saved: your address is shown.");
    } catch (error) {
      flash(result, `Not saved: ${error.message}`, "error");
      this.input.focus();
    }
  }
}
